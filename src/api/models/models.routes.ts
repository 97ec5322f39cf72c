/** `GET /v1/runs/:id/model` (export) and `POST /v1/runs/:id/predict`, declared with their schemas. */
import { z } from 'zod';
import { HttpError, problemSchema } from '../errors.js';
import { defineRoute, type RouteSpec } from '../route.js';
import { runIdParams } from '../runs/runs.schemas.js';
import type { Request, Response } from 'express';
import { requireAcceptedImage } from './image-format.js';
import { IMAGE_TYPES } from './image-input.js';
import { modelQuery } from './models.schemas.js';
import type { RunModelsService } from './run-models.service.js';

const BUSY =
  'Every model thread is busy and PREDICT_QUEUE_LENGTH requests wait (or the thread serving ' +
  'this one stopped); see `Retry-After`';

export const predictionResponse = z.object({
  runId: z.uuid(),
  /** The checkpoint that answered: the best by the run's metric, else the latest. */
  checkpoint: z.object({ id: z.uuid(), step: z.number().int() }),
  /** Top 5, most likely first. */
  predictions: z.array(z.object({ label: z.string(), probability: z.number() })),
});

/**
 * Aborts when the client goes away before its answer is sent: a request still waiting for a
 * model thread then leaves the queue instead of making the thread work for no one.
 */
function clientGone(res: Response): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    // An HttpError: nobody is left to answer, and it is no server fault to log.
    const gone = new HttpError(503, 'Service Unavailable', 'the client went away');
    if (!res.writableFinished) controller.abort(gone);
  });
  return controller.signal;
}

export function modelsRoutes(service: RunModelsService, maxImageBytes: number): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/runs/:id/model',
      tag: 'models',
      summary:
        'Download the trained model as a TensorFlow.js Layers model (tar of model.json + weights)',
      request: { params: runIdParams, query: modelQuery },
      responses: {
        200: { description: 'The model archive', contentType: 'application/x-tar' },
        409: { description: 'The checkpoint cannot be used', schema: problemSchema },
        422: { description: 'This model cannot be exported', schema: problemSchema },
        503: { description: BUSY, schema: problemSchema },
      },
      async handle({ params, query }, res) {
        const { fileName, archive } = await service.exportModel(
          params.id,
          query.checkpoint,
          clientGone(res),
        );
        res.status(200).type('application/x-tar').attachment(fileName);
        archive.pipe(res);
      },
    }),

    defineRoute({
      method: 'post',
      path: '/v1/runs/:id/predict',
      tag: 'models',
      summary: "Top-5 classes of an image, from the run's best checkpoint",
      request: { params: runIdParams },
      rawBody: {
        types: IMAGE_TYPES,
        limitBytes: maxImageBytes,
        description: 'The image (JPEG, PNG or WebP), resized to the model input',
      },
      responses: {
        200: { description: 'The five most likely classes', schema: predictionResponse },
        415: {
          description: 'The body is not a JPEG, PNG or WebP (by its bytes)',
          schema: problemSchema,
        },
        422: {
          description: 'The run has no usable model, or the image is unreadable',
          schema: problemSchema,
        },
        503: { description: BUSY, schema: problemSchema },
      },
      async handle({ params }, res, req: Request) {
        const image = req.body as Buffer;
        requireAcceptedImage(image, req.get('content-type'));
        res.json(await service.predict(params.id, image, clientGone(res)));
      },
    }),
  ];
}
