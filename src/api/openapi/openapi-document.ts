/**
 * The OpenAPI 3.1 document, built from the route declarations (route.ts) and their zod schemas
 * with zod's own JSON Schema conversion: OpenAPI 3.1 schemas are JSON Schema 2020-12, which is
 * what `z.toJSONSchema` writes, so no second copy of any schema exists.
 */
import { z } from 'zod';
import { problemSchema } from '../errors.js';
import type { RouteSpec } from '../route.js';

type JsonSchema = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  // `unrepresentable: 'any'`: a transform's output (a parsed list) becomes `{}` rather than
  // failing; requests are described by their input side, where every schema is representable.
  const converted = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as JsonSchema;
  // The document's dialect is already 2020-12; a `$schema` on every fragment is noise.
  delete converted['$schema'];
  return converted;
}

/** `/v1/runs/:id` → `/v1/runs/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query' | 'header') {
  if (!schema) return [];
  const object = jsonSchema(schema, 'input') as {
    properties?: Record<string, JsonSchema>;
    required?: string[];
  };
  return Object.entries(object.properties ?? {}).map(([name, property]) => {
    const { description, ...propertySchema } = property;
    return {
      name,
      in: where,
      required: where === 'path' || (object.required ?? []).includes(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: propertySchema,
    };
  });
}

const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };

function problemResponse(description: string) {
  return { description, content: { 'application/problem+json': { schema: PROBLEM_REF } } };
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

/** JSON Schema 2020-12 (OpenAPI 3.1) for a body of raw bytes. */
function binary(mediaType: string) {
  return { type: 'string', contentMediaType: mediaType };
}

export function buildOpenApiDocument(routes: readonly RouteSpec[], info: OpenApiInfo) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const { params, query, headers, body } = route.request;
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      const isProblem = response.schema === problemSchema;
      responses[status] = isProblem
        ? problemResponse(response.description)
        : {
            description: response.description,
            ...(response.schema
              ? {
                  content: {
                    'application/json': { schema: jsonSchema(response.schema, 'output') },
                  },
                }
              : response.contentType
                ? { content: { [response.contentType]: { schema: binary(response.contentType) } } }
                : {}),
          };
    }
    const errors: Record<string, string> = {
      400: 'A parameter, header or the body is invalid; `errors[]` names each field',
      401: 'No API key, or an unknown or revoked one',
      403: 'The key lacks the scope this route needs',
      429: 'Too many requests for this key; see `Retry-After`',
      500: 'The server failed; nothing about why is disclosed',
    };
    if (params) errors[404] = 'No such run';
    if (body || route.rawBody) {
      errors[413] = 'The body is larger than the limit';
      errors[415] = route.rawBody
        ? `The body is not one of ${route.rawBody.types.join(', ')}`
        : 'The body is not application/json';
    }
    for (const [status, description] of Object.entries(errors))
      responses[status] ??= problemResponse(description);

    const path = openApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method] = {
      operationId: `${route.method}${path
        .split('/')
        .filter(Boolean)
        .map((s) => s.replace(/[{}]/g, ''))
        .map((s) => s[0]!.toUpperCase() + s.slice(1))
        .join('')}`,
      summary: route.summary,
      tags: [route.tag],
      security: [{ bearerAuth: [] }],
      parameters: [
        ...parameters(params, 'path'),
        ...parameters(query, 'query'),
        ...parameters(headers, 'header'),
      ],
      ...(route.rawBody
        ? {
            requestBody: {
              required: true,
              description: route.rawBody.description,
              content: Object.fromEntries(
                route.rawBody.types.map((type) => [type, { schema: binary(type) }]),
              ),
            },
          }
        : body
          ? {
              requestBody: {
                required: !body.safeParse(undefined).success,
                content: { 'application/json': { schema: jsonSchema(body, 'input') } },
              },
            }
          : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info,
    servers: [{ url: '/' }],
    security: [{ bearerAuth: [] }],
    tags: [...new Set(routes.map((r) => r.tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          description: 'An API key (`npm run keys:create`), as `Authorization: Bearer <key>`',
        },
      },
      schemas: { Problem: jsonSchema(problemSchema, 'output') },
    },
  };
}
