/** /openapi.json is valid OpenAPI 3.1, covers exactly the routes the app serves, and /docs shows it offline. */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiPath } from '../../src/api/openapi/openapi-document.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';
import { registeredRoutes } from '../helpers/routes.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
let doc: any;

beforeAll(async () => {
  db = await createTestDatabase('api_openapi');
  queue = await createTestQueue('api-openapi');
  api = await startApi(db, queue.queue);
  const res = await fetch(`${api.url}/openapi.json`);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  doc = await res.json();
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
});

describe('/openapi.json', () => {
  it('validates as OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    // The validator does refuse a broken document (so the pass above means something).
    const broken = structuredClone(doc);
    broken.paths['/v1/runs'].get.responses = { 200: { content: {} } }; // no description
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('describes exactly the /v1 routes the router serves', () => {
    const served = registeredRoutes(api.app)
      .filter((r) => r.path.startsWith('/v1/'))
      .map((r) => `${r.method} ${openApiPath(r.path)}`)
      .sort();
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(served.length).toBeGreaterThanOrEqual(7);
    expect(documented).toEqual(served);
  });

  it('asks for a bearer key on every operation and documents the problem answers', () => {
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.security, `${method} ${path}`).toEqual([{ bearerAuth: [] }]);
        for (const status of ['400', '401', '403', '429'])
          expect(Object.keys(op.responses[status].content), `${method} ${path} ${status}`).toEqual([
            'application/problem+json',
          ]);
      }
    }
  });

  it('carries the zod schemas: strict bodies with their bounds, typed path and query parameters', () => {
    const submit = doc.paths['/v1/runs'].post;
    // One body per run kind (train, eval, external), each strict.
    const variants = submit.requestBody.content['application/json'].schema.oneOf;
    expect(variants.map((v: any) => v.properties.kind.const)).toEqual([
      'train',
      'eval',
      'external',
    ]);
    for (const variant of variants) expect(variant.additionalProperties).toBe(false);
    const body = variants[0];
    expect(variants[1].required).toEqual(expect.arrayContaining(['kind', 'checkpoint', 'dataset']));
    expect(body.required).toEqual(expect.arrayContaining(['kind', 'model', 'dataset', 'train']));
    expect(body.properties.train.properties.epochs).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: 10_000,
    });
    expect(body.properties.model.properties.inputSize).toMatchObject({ minimum: 32, maximum: 512 });
    expect(body.properties.name).toMatchObject({ type: 'string', maxLength: 200 });
    expect(submit.parameters).toEqual([
      expect.objectContaining({ name: 'idempotency-key', in: 'header', required: false }),
    ]);
    expect(Object.keys(submit.responses)).toEqual(
      expect.arrayContaining(['200', '201', '413', '415']),
    );
    expect(
      submit.responses['201'].content['application/json'].schema.properties.status.enum,
    ).toContain('queued');

    expect(submit.requestBody.required).toBe(true);
    expect(doc.paths['/v1/runs/{id}/cancel'].post.requestBody.required).toBe(false);

    const show = doc.paths['/v1/runs/{id}'].get;
    expect(show.parameters).toEqual([
      expect.objectContaining({
        name: 'id',
        in: 'path',
        required: true,
        schema: expect.objectContaining({ format: 'uuid' }),
      }),
    ]);
    const list = doc.paths['/v1/runs'].get.parameters;
    expect(list.find((p: any) => p.name === 'limit')).toMatchObject({
      in: 'query',
      required: false,
      schema: { type: 'integer', minimum: 1, maximum: 100 },
    });
  });
});

describe('/docs', () => {
  it('serves a Swagger UI page whose scripts and styles come from this server, not a CDN', async () => {
    const page = await fetch(`${api.url}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toEqual(
      expect.arrayContaining(['/docs/assets/swagger-ui-bundle.js', '/docs/init.js']),
    );
    for (const asset of assets) {
      const res = await fetch(`${api.url}${asset}`);
      expect(res.status, asset).toBe(200);
      expect((await res.text()).length, asset).toBeGreaterThan(50);
    }
    const init = await (await fetch(`${api.url}/docs/init.js`)).text();
    expect(init).toContain("url: '/openapi.json'");
  });
});
