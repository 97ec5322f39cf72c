/**
 * API keys: every /v1 route (found by walking the router, so a new one is covered the day it is
 * added) refuses requests without a key, with a wrong key and with a revoked key; scopes decide
 * what a key may do; API_KEYS and the keys CLIs manage keys.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/api/auth/api-key-store.js';
import { COUNTED_JOB_STATES } from '../../src/queue/job-states.js';
import { getJson, postJson, startApi, trainBody, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';
import { registeredRoutes } from '../helpers/routes.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
let revokedKey: string;

beforeAll(async () => {
  db = await createTestDatabase('api_auth');
  queue = await createTestQueue('api-auth');
  api = await startApi(db, queue.queue);
  const revoked = await api.apiKeys.create({ name: 'revoked', scopes: ['admin'] });
  await api.apiKeys.revoke('revoked');
  revokedKey = revoked.key;
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
});
beforeEach(async () => {
  await queue.queue.obliterate({ force: true });
  await db.prisma.run.deleteMany();
});

async function jobCount(): Promise<number> {
  const counts = await queue.queue.getJobCounts(...COUNTED_JOB_STATES);
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** `json` is `any`: whatever JSON the answer holds; each test checks the shape it expects. */
async function call(
  method: string,
  path: string,
  authorization?: string,
): Promise<{ status: number; headers: Headers; json: any }> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(authorization === undefined ? {} : { authorization }),
    },
    ...(method === 'POST' ? { body: JSON.stringify(trainBody()) } : {}),
  });
  // An event stream that was let through never ends: its status is the answer.
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    await res.body?.cancel();
    return { status: res.status, headers: res.headers, json: undefined };
  }
  return { status: res.status, headers: res.headers, json: await res.json() };
}

const SOME_RUN = '00000000-0000-4000-8000-000000000000';

describe('every /v1 route', () => {
  const v1Routes = () =>
    registeredRoutes(api.app).filter((r) => r.path === '/v1' || r.path.startsWith('/v1/'));

  it('is found by walking the router (the list the checks below run over)', () => {
    const names = v1Routes().map((r) => `${r.method} ${r.path}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'POST /v1/runs',
        'GET /v1/runs',
        'GET /v1/runs/:id',
        'POST /v1/runs/:id/cancel',
        'GET /v1/runs/:id/metrics',
        'GET /v1/runs/:id/checkpoints',
        'GET /v1/queues',
      ]),
    );
  });

  const refusals: Array<[string, () => string | undefined]> = [
    ['no Authorization header', () => undefined],
    ['a wrong key', () => `Bearer ${generateApiKey()}`],
    ['a revoked key', () => `Bearer ${revokedKey}`],
    ['a key in the wrong scheme', () => `Basic ${Buffer.from(`x:${api.key}`).toString('base64')}`],
    ['an empty bearer', () => 'Bearer '],
  ];
  for (const [what, header] of refusals) {
    it(`refuses ${what} with 401 problem+json, and creates and enqueues nothing`, async () => {
      for (const route of v1Routes()) {
        const path = route.path.replace(/:[A-Za-z]+/g, SOME_RUN);
        const res = await call(route.method, path, header());
        const name = `${route.method} ${route.path}`;
        expect(res.status, name).toBe(401);
        expect(res.headers.get('content-type'), name).toMatch(/^application\/problem\+json/);
        expect(res.headers.get('www-authenticate'), name).toMatch(/^Bearer/);
        expect(res.json, name).toMatchObject({ status: 401, title: 'Unauthorized' });
      }
      expect(await db.prisma.run.count()).toBe(0);
      expect(await jobCount()).toBe(0);
    });
  }

  it('lets a live admin key through on every one of them (so the 401s above are the key)', async () => {
    for (const route of v1Routes()) {
      const path = route.path.replace(/:[A-Za-z]+/g, SOME_RUN);
      const res = await call(route.method, path, `Bearer ${api.key}`);
      // Past the guard: answered by the route (400 or 415 for a body it does not take, 404 no
      // run).
      expect([200, 201, 400, 404, 415], `${route.method} ${route.path}`).toContain(res.status);
    }
  });
});

describe('scopes', () => {
  it('read may GET but not submit or cancel (403); submit may POST but not read', async () => {
    const read = (await api.apiKeys.create({ name: 'reader', scopes: ['read'] })).key;
    const submit = (await api.apiKeys.create({ name: 'submitter', scopes: ['submit'] })).key;
    const asRead = { authorization: `Bearer ${read}` };
    const asSubmit = { authorization: `Bearer ${submit}` };

    const created = await postJson(`${api.url}/v1/runs`, trainBody(), asSubmit);
    expect(created.status).toBe(201);
    const refused = await postJson(`${api.url}/v1/runs`, trainBody(), asRead);
    expect(refused.status).toBe(403);
    expect(refused.json.detail).toMatch(/needs 'submit'/);
    const cancel = await postJson(`${api.url}/v1/runs/${created.json.id}/cancel`, {}, asRead);
    expect(cancel.status).toBe(403);
    expect(await db.prisma.run.count()).toBe(1);
    expect(await jobCount()).toBe(1);

    expect((await getJson(`${api.url}/v1/runs/${created.json.id}`, asRead)).status).toBe(200);
    const listAsSubmit = await getJson(`${api.url}/v1/runs`, asSubmit);
    expect(listAsSubmit.status).toBe(403);
    expect(listAsSubmit.json.detail).toMatch(/needs 'read'/);
    expect(
      (await postJson(`${api.url}/v1/runs/${created.json.id}/cancel`, {}, asSubmit)).status,
    ).toBe(200);
  });

  it('keeps /admin for admin keys: 401 without a key, 403 for read+submit, admin gets through', async () => {
    const both = (await api.apiKeys.create({ name: 'both', scopes: ['read', 'submit'] })).key;
    expect((await getJson(`${api.url}/admin/queues`, { authorization: '' })).status).toBe(401);
    for (const path of ['/admin/queues', '/ADMIN/queues', '/Admin', '/admin'])
      expect(
        (await getJson(`${api.url}${path}`, { authorization: `Bearer ${both}` })).status,
        path,
      ).toBe(403);
    // An admin key gets past the guard to bull-board's page.
    const asAdmin = await fetch(`${api.url}/admin/queues`, {
      headers: { authorization: `Bearer ${api.key}` },
    });
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await asAdmin.text()).toMatch(/bull/i);
  });
});

describe('keys', () => {
  it('stops working the moment it is revoked', async () => {
    const { key } = await api.apiKeys.create({ name: 'short-lived', scopes: ['read'] });
    const auth = { authorization: `Bearer ${key}` };
    expect((await getJson(`${api.url}/v1/runs`, auth)).status).toBe(200);
    await api.apiKeys.revoke('short-lived');
    expect((await getJson(`${api.url}/v1/runs`, auth)).status).toBe(401);
  });

  it('is stored as its SHA-256 only, with a prefix too short to use', async () => {
    const { id, key } = await api.apiKeys.create({ name: 'stored', scopes: ['read'] });
    expect(key).toMatch(/^gq_[A-Za-z0-9_-]{43}$/);
    const row = await db.prisma.apiKey.findUniqueOrThrow({ where: { id } });
    expect(row.keyHash).toBe(hashApiKey(key));
    expect(JSON.stringify(row)).not.toContain(key.slice(10));
    expect(row.keyPrefix.length).toBeLessThan(12);
  });

  it('follows API_KEYS: listed keys work with every scope, keys dropped from the list stop', async () => {
    const [a, b] = [generateApiKey(), generateApiKey()];
    await api.apiKeys.syncEnvKeys([a, b]);
    await api.apiKeys.syncEnvKeys([a, b]); // a restart with the same list changes nothing
    for (const key of [a, b])
      expect(
        (await postJson(`${api.url}/v1/runs`, trainBody(), { authorization: `Bearer ${key}` }))
          .status,
      ).toBe(201);
    await api.apiKeys.syncEnvKeys([b]);
    expect((await getJson(`${api.url}/v1/runs`, { authorization: `Bearer ${a}` })).status).toBe(
      401,
    );
    expect((await getJson(`${api.url}/v1/runs`, { authorization: `Bearer ${b}` })).status).toBe(
      200,
    );
    expect(await db.prisma.apiKey.count({ where: { source: 'env' } })).toBe(2);
  });

  it('keys:create prints a key once that works with its scopes; keys:revoke ends it', async () => {
    const env = { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'silent' };
    // Async: the API answering the checks in between lives in this process.
    const tsx = (script: string, args: string[]) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', script, ...args],
          { env },
          (error, stdout, stderr) =>
            resolve({ status: error ? Number(error.code) : 0, stdout, stderr }),
        );
      });
    const created = await tsx('src/api/auth/keys-create-cli.ts', [
      '--name',
      'from-cli',
      '--scopes',
      'read',
    ]);
    expect(created.stderr).toMatch(/shown once/);
    expect(created.status).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^gq_/);
    const duplicate = await tsx('src/api/auth/keys-create-cli.ts', ['--name', 'from-cli']);
    expect(duplicate.status).toBe(1);
    expect(duplicate.stderr).toMatch(/exists already/);
    const badScope = await tsx('src/api/auth/keys-create-cli.ts', [
      '--name',
      'x',
      '--scopes',
      'root',
    ]);
    expect(badScope.status).toBe(1);
    expect(badScope.stderr).toMatch(/--scopes/);

    const auth = { authorization: `Bearer ${key}` };
    expect((await getJson(`${api.url}/v1/runs`, auth)).status).toBe(200);
    expect((await postJson(`${api.url}/v1/runs`, trainBody(), auth)).status).toBe(403);
    const revoked = await tsx('src/api/auth/keys-revoke-cli.ts', ['from-cli']);
    expect(revoked.status).toBe(0);
    expect(revoked.stdout).toMatch(/revoked key 'from-cli'/);
    expect((await getJson(`${api.url}/v1/runs`, auth)).status).toBe(401);
    expect((await tsx('src/api/auth/keys-revoke-cli.ts', ['nobody'])).status).toBe(1);
  });
});

describe('every route outside /v1', () => {
  /** The routes that answer without a key; anything else registered must refuse. */
  const OPEN = [
    'GET /healthz',
    'GET /readyz',
    'GET /openapi.json',
    'GET /docs',
    'GET /docs/init.js',
    // The dashboard's page (static; it asks for a key and sends it with every API call).
    'GET /',
    'GET /runs/:id',
    'GET /compare',
  ];

  it('is either one of the known open routes or refuses requests without a key', async () => {
    const routes = registeredRoutes(api.app);
    expect(routes.length).toBeGreaterThan(OPEN.length);
    for (const route of routes) {
      const name = `${route.method} ${route.path}`;
      if (OPEN.includes(name)) continue;
      const res = await call(route.method, route.path.replace(/:[A-Za-z]+/g, SOME_RUN));
      expect(res.status, `${name} answers without a key`).toBe(401);
    }
  });
});

describe('open routes', () => {
  it('serves /healthz, /readyz, /openapi.json, /docs and the dashboard without a key', async () => {
    for (const path of ['/healthz', '/readyz', '/openapi.json', '/docs', '/', '/ui/app.js']) {
      const res = await fetch(`${api.url}${path}`);
      expect(res.status, path).toBe(200);
    }
  });
});
