import express, { Router } from 'express';
import { HttpError, parseOr400 } from '../errors.js';
import { runIdParam } from '../runs/runs.schemas.js';
import { IMAGE_TYPES } from './image-input.js';
import { modelQuery } from './models.schemas.js';
import type { RunModelsService } from './run-models.service.js';

/** `GET /v1/runs/:id/model` and `POST /v1/runs/:id/predict`. */
export function createModelsRouter(service: RunModelsService, maxImageBytes: number): Router {
  const router = Router();

  router.get('/:id/model', async (req, res) => {
    const id = parseOr400(runIdParam, req.params.id, 'path.id');
    const { checkpoint } = parseOr400(modelQuery, req.query, 'query');
    const { fileName, archive } = await service.exportModel(id, checkpoint);
    res.status(200).type('application/x-tar').attachment(fileName);
    archive.pipe(res);
  });

  router.post(
    '/:id/predict',
    express.raw({ type: [...IMAGE_TYPES], limit: maxImageBytes }),
    async (req, res) => {
      const id = parseOr400(runIdParam, req.params.id, 'path.id');
      if (!Buffer.isBuffer(req.body) || req.body.byteLength === 0) {
        throw new HttpError(
          415,
          'Unsupported Media Type',
          `send the image as the body with content-type ${IMAGE_TYPES.join(', ')}`,
        );
      }
      res.json(await service.predict(id, req.body));
    },
  );

  return router;
}
