/**
 * A route declared once: method, path, the zod schemas of its request and responses, and its
 * handler. `mountRoutes` registers it on Express and validates every part of the request with
 * those schemas; `buildOpenApiDocument` describes it from the same declaration, so the document
 * cannot drift from what the server accepts.
 */
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import type { z } from 'zod';
import { HttpError, parseOr400 } from './errors.js';
import { refuseOversizedBody } from './middleware/oversized-body.js';

export interface RequestSchemas {
  /** Path parameters (`:id`), a strict object. */
  params?: z.ZodType;
  /** The query string, a strict object (values arrive as strings: coerce numbers). */
  query?: z.ZodType;
  /** Headers the route reads, a non-strict object with lower-case names. */
  headers?: z.ZodType;
  /** The JSON body. */
  body?: z.ZodType;
}

export type ParsedRequest<S extends RequestSchemas> = {
  [K in keyof S]: S[K] extends z.ZodType ? z.output<S[K]> : never;
};

export interface ResponseSpec {
  description: string;
  /** JSON body schema; none for an empty body. */
  schema?: z.ZodType;
  /** A body that is not JSON (a file download), by media type. */
  contentType?: string;
}

/** A route whose body is bytes (an image), not JSON: the handler reads `req.body` as a Buffer. */
export interface RawBodySpec {
  types: readonly string[];
  limitBytes: number;
  description: string;
}

export interface RouteSpec<S extends RequestSchemas = RequestSchemas> {
  method: 'get' | 'post';
  /** Express path, absolute (`/v1/runs/:id`). */
  path: string;
  /** One line for the OpenAPI document. */
  summary: string;
  /** OpenAPI tag (the resource). */
  tag: string;
  request: S;
  /** Set for routes that take bytes instead of JSON (then `request.body` is unused). */
  rawBody?: RawBodySpec;
  /** Success responses by status; error responses (problem+json) are added for every route. */
  responses: Record<number, ResponseSpec>;
  handle(input: ParsedRequest<S>, res: Response, req: Request): Promise<void> | void;
}

/** Declares a route with its handler typed from its request schemas. */
export function defineRoute<S extends RequestSchemas>(spec: RouteSpec<S>): RouteSpec<S> {
  return spec;
}

const WHERE: Record<keyof RequestSchemas, string> = {
  params: 'path',
  query: 'query',
  headers: 'header',
  body: 'body',
};

/** Reads a raw body of one of `types` within its limit, refusing an oversized one early. */
function rawBodyReader(rawBody: RawBodySpec): RequestHandler {
  const read = express.raw({ type: [...rawBody.types], limit: rawBody.limitBytes });
  return (req, res, next) => {
    const answered = req.is([...rawBody.types])
      ? refuseOversizedBody(req, res, rawBody.limitBytes)
      : () => false;
    read(req, res, (error?: unknown) => {
      if (!answered()) next(error as Error);
    });
  };
}

/** Registers each route on `router`, parsing params, query, headers and body before its handler. */
export function mountRoutes(router: Router, routes: readonly RouteSpec[]): void {
  for (const route of routes) {
    const { rawBody } = route;
    const readBytes = rawBody
      ? [
          rawBodyReader(rawBody),
          (req: Request, _res: Response, next: () => void) => {
            if (!Buffer.isBuffer(req.body) || req.body.byteLength === 0)
              throw new HttpError(
                415,
                'Unsupported Media Type',
                `send the body as ${rawBody.types.join(', ')}`,
              );
            next();
          },
        ]
      : [];
    router[route.method](route.path, ...readBytes, async (req: Request, res: Response) => {
      const input: Record<string, unknown> = {};
      for (const part of ['params', 'query', 'headers', 'body'] as const) {
        const schema = route.request[part];
        if (schema) input[part] = parseOr400(schema, req[part], WHERE[part]);
      }
      await route.handle(input as ParsedRequest<RequestSchemas>, res, req);
    });
  }
}
