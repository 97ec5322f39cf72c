/**
 * Hostile input: each request below gets a 4xx application/problem+json that names the field or
 * the problem, leaks nothing about the server, creates no run, enqueues no job, and leaves the
 * API healthy.
 */
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { COUNTED_JOB_STATES } from '../../src/queue/job-states.js';
import { startApi, trainBody, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;
const PREDICT_MAX_BYTES = 256 * 1024;
const BODY_LIMIT = 64 * 1024;

beforeAll(async () => {
  db = await createTestDatabase('api_hostile');
  queue = await createTestQueue('api-hostile');
  api = await startApi(
    db,
    queue.queue,
    { BODY_LIMIT_BYTES: BODY_LIMIT },
    { maxImageBytes: PREDICT_MAX_BYTES },
  );
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
});

afterEach(async () => {
  const counts = await queue.queue.getJobCounts(...COUNTED_JOB_STATES);
  expect(
    Object.values(counts).reduce((a, b) => a + b, 0),
    'jobs enqueued',
  ).toBe(0);
  expect(await db.prisma.run.count(), 'runs created').toBe(0);
  const health = await fetch(`${api.url}/healthz`);
  expect(health.status).toBe(200);
});

interface Sent {
  method?: string;
  path?: string;
  body?: string | Uint8Array;
  contentType?: string | null;
}

async function send({
  method = 'POST',
  path = '/v1/runs',
  body,
  contentType = 'application/json',
}: Sent) {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${api.key}`,
      ...(contentType === null ? {} : { 'content-type': contentType }),
    },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    text,
    json: JSON.parse(text),
  };
}

/** What no error body may contain: stack frames, file paths, SQL, Prisma or driver names. */
function expectNoLeak(text: string): void {
  expect(text).not.toMatch(
    /\bat .*\(|\.ts:\d+|\/work\/|node_modules|SELECT |INSERT |prisma|Prisma|ECONN/,
  );
}

function expectProblem(
  res: Awaited<ReturnType<typeof send>>,
  status: number,
  detail: RegExp,
): void {
  expect(res.status, res.text).toBe(status);
  expect(res.contentType).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({
    status,
    type: expect.stringMatching(/^urn:/),
    title: expect.any(String),
  });
  expect(res.json.detail).toMatch(detail);
  expectNoLeak(res.text);
}

const withTrain = (train: Record<string, unknown>) =>
  trainBody({
    train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 }, ...train },
  });
const withModel = (model: Record<string, unknown>) =>
  trainBody({ model: { arch: 'googlenet', numClasses: 4, inputSize: 32, width: 0.125, ...model } });

describe('bodies with wrong values', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['a number as a string', withTrain({ epochs: '3' }), /body\.train\.epochs/],
    ['"NaN" for a number', withTrain({ batchSize: 'NaN' }), /body\.train\.batchSize/],
    [
      '"Infinity" for a learning rate',
      withTrain({ optimizer: { type: 'sgd', learningRate: 'Infinity' } }),
      /body\.train\.optimizer\.learningRate/,
    ],
    ['a huge epoch count', withTrain({ epochs: 1e300 }), /body\.train\.epochs/],
    ['a number past 2^53', withTrain({ maxSteps: 2 ** 60 }), /body\.train\.maxSteps/],
    ['a fractional batch size', withTrain({ batchSize: 7.5 }), /body\.train\.batchSize/],
    ['a negative epoch count', withTrain({ epochs: -1 }), /body\.train\.epochs/],
    [
      'an absurd learning rate',
      withTrain({ optimizer: { type: 'adam', learningRate: 1e9 } }),
      /learningRate/,
    ],
    ['an input size of 100000', withModel({ inputSize: 100_000 }), /body\.model\.inputSize/],
    ['a width of 1000', withModel({ width: 1000 }), /body\.model\.width/],
    ['a million classes', withModel({ numClasses: 1_000_000 }), /body\.model\.numClasses/],
    [
      'a data set of 10^12 images',
      trainBody({ dataset: { format: 'synthetic', numClasses: 4, size: 1e12, seed: 1 } }),
      /body\.dataset\.size/,
    ],
    ['a name of 10,000 characters', trainBody({ name: 'x'.repeat(10_000) }), /body\.name/],
    ['an object for a name', trainBody({ name: { $gt: '' } }), /body\.name/],
    ['an array for the body', [trainBody()], /body/],
    [
      'a traversal metric name for keepBest',
      trainBody({ checkpoint: { everySteps: 5, metric: '../../etc/passwd' } }),
      /body\.checkpoint\.metric/,
    ],
    ['a priority of 1e6', trainBody({ priority: 1e6 }), /body\.priority/],
  ];
  for (const [what, body, field] of cases) {
    it(`refuses ${what} with a 400 naming the field`, async () => {
      const res = await send({ body: JSON.stringify(body) });
      expectProblem(res, 400, field);
      expect(res.json.errors?.length ?? 0).toBeGreaterThan(0);
    });
  }
});

describe('prototype pollution', () => {
  const bodies: Array<[string, string, RegExp]> = [
    [
      '__proto__ at the top',
      `{"__proto__": {"admin": true}, ${JSON.stringify(trainBody()).slice(1)}`,
      /body\.__proto__/,
    ],
    [
      '__proto__ deep inside',
      JSON.stringify(trainBody()).replace('"seed":1', '"seed":1,"__proto__":{"polluted":1}'),
      /body\.dataset\.__proto__/,
    ],
    [
      'constructor.prototype',
      `{"constructor": {"prototype": {"x": 1}}, ${JSON.stringify(trainBody()).slice(1)}`,
      /body\.constructor/,
    ],
    ['prototype inside an array', JSON.stringify([{ prototype: 1 }]), /body\.0\.prototype/],
  ];
  for (const [what, raw, path] of bodies) {
    it(`refuses ${what} in the body with a 400 naming the path`, async () => {
      const res = await send({ body: raw });
      expectProblem(res, 400, path);
      expect(({} as Record<string, unknown>)['admin']).toBeUndefined();
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    });
  }

  it('refuses __proto__ in a query string', async () => {
    const res = await send({
      method: 'GET',
      path: '/v1/runs?__proto__=1&limit=2',
      contentType: null,
    });
    expect(res.status).toBe(400);
    expect(res.json.detail).toMatch(/query\.__proto__/);
  });
});

describe('bodies of the wrong size or type', () => {
  it('refuses a body over the limit with 413', async () => {
    const big = JSON.stringify(trainBody({ name: 'x'.repeat(BODY_LIMIT) }));
    expectProblem(await send({ body: big }), 413, new RegExp(`limit of ${BODY_LIMIT} bytes`));
  });

  it('refuses a body over the limit with 413 even when chunked (no Content-Length)', async () => {
    const chunk = new TextEncoder().encode(`{"name": "${'y'.repeat(BODY_LIMIT * 2)}"}`);
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(chunk);
        controller.close();
      },
    });
    const res = await fetch(`${api.url}/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.key}`, 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
  });

  const types: Array<[string, string | null, string]> = [
    ['text/plain', 'text/plain', JSON.stringify(trainBody())],
    ['a form', 'application/x-www-form-urlencoded', 'kind=train&name=x'],
    ['multipart', 'multipart/form-data; boundary=x', '--x\r\n\r\n{}\r\n--x--'],
    ['XML', 'application/xml', '<run kind="train"/>'],
    ['no content type at all', null, JSON.stringify(trainBody())],
  ];
  for (const [what, contentType, body] of types) {
    it(`refuses ${what} with 415`, async () => {
      expectProblem(await send({ body, contentType }), 415, /application\/json/);
    });
  }

  it('refuses JSON in a charset other than UTF-8 with 415', async () => {
    expectProblem(
      await send({ body: '{}', contentType: 'application/json; charset=iso-8859-1' }),
      415,
      /charset/,
    );
  });

  it('refuses malformed JSON with a 400 that does not echo the body', async () => {
    const res = await send({ body: '{"kind": "train", "name": "secret-looking-text' });
    expectProblem(res, 400, /not valid JSON/);
    expect(res.text).not.toContain('secret-looking-text');
  });

  it('refuses a bare JSON string or null (not an object) with 400', async () => {
    expectProblem(await send({ body: '"train"' }), 400, /JSON/);
    expectProblem(await send({ body: 'null' }), 400, /JSON/);
  });

  it('refuses a POST with no body with a 400 naming the body', async () => {
    expectProblem(await send({ contentType: null }), 400, /^body/);
  });
});

describe('paths, queries and headers', () => {
  const cases: Array<[string, Sent, number, RegExp]> = [
    [
      'a traversal run id',
      { method: 'GET', path: '/v1/runs/..%2F..%2Fetc%2Fpasswd', contentType: null },
      400,
      /path\.id/,
    ],
    [
      'a SQL-looking run id',
      { method: 'GET', path: "/v1/runs/1'%20OR%20'1'='1", contentType: null },
      400,
      /path\.id/,
    ],
    [
      'a run id of 5000 characters',
      { method: 'GET', path: `/v1/runs/${'a'.repeat(5000)}`, contentType: null },
      400,
      /path\.id/,
    ],
    [
      'limit=Infinity',
      { method: 'GET', path: '/v1/runs?limit=Infinity', contentType: null },
      400,
      /query\.limit/,
    ],
    [
      'limit=NaN',
      { method: 'GET', path: '/v1/runs?limit=NaN', contentType: null },
      400,
      /query\.limit/,
    ],
    [
      'limit=1e400',
      { method: 'GET', path: '/v1/runs?limit=1e400', contentType: null },
      400,
      /query\.limit/,
    ],
    [
      'a repeated limit',
      { method: 'GET', path: '/v1/runs?limit=1&limit=2', contentType: null },
      400,
      /query\.limit/,
    ],
    [
      'an unknown query parameter',
      { method: 'GET', path: '/v1/runs?sort=name', contentType: null },
      400,
      /query/,
    ],
    [
      'a traversal metric name',
      {
        method: 'GET',
        path: '/v1/runs/00000000-0000-4000-8000-000000000000/metrics?names=../../etc/passwd',
        contentType: null,
      },
      400,
      /query\.names/,
    ],
    [
      'maxPoints=-1',
      {
        method: 'GET',
        path: '/v1/runs/00000000-0000-4000-8000-000000000000/metrics?maxPoints=-1',
        contentType: null,
      },
      400,
      /query\.maxPoints/,
    ],
    [
      'a forged cursor',
      {
        method: 'GET',
        path: `/v1/runs?cursor=${Buffer.from('["x","../"]').toString('base64url')}`,
        contentType: null,
      },
      400,
      /query\.cursor/,
    ],
  ];
  for (const [what, request, status, detail] of cases) {
    it(`refuses ${what} with ${status}`, async () => {
      expectProblem(await send(request), status, detail);
    });
  }

  it('refuses options in a cancel request, which takes none', async () => {
    const res = await send({
      path: '/v1/runs/00000000-0000-4000-8000-000000000000/cancel',
      body: JSON.stringify({ force: true }),
    });
    expectProblem(res, 400, /body: .*force/);
  });

  it('refuses an Idempotency-Key with spaces or of 1000 characters', async () => {
    for (const key of ['a b', 'k'.repeat(1000)]) {
      const res = await fetch(`${api.url}/v1/runs`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${api.key}`,
          'content-type': 'application/json',
          'idempotency-key': key,
        },
        body: JSON.stringify(trainBody()),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/header\.idempotency-key/);
    }
  });

  it('answers unknown routes with a JSON 404 problem, inside /v1 and out', async () => {
    for (const path of [
      '/v1/nothing',
      '/nothing',
      '/v1/runs/00000000-0000-4000-8000-000000000000/nothing',
    ]) {
      expectProblem(await send({ method: 'GET', path, contentType: null }), 404, /no route/);
    }
  });

  it('sends helmet headers and no X-Powered-By', async () => {
    const res = await fetch(`${api.url}/healthz`);
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(res.headers.get('access-control-allow-origin')).toBeNull(); // CORS off by default
  });
});

describe('text the database cannot store, and text that rewrites terminals', () => {
  const external = (overrides: Record<string, unknown>) =>
    JSON.stringify({ kind: 'external', name: 'ext', ...overrides });
  const cases: Array<[string, string, RegExp]> = [
    ['a NUL in a run name', external({ name: 'a\u0000b' }), /body\.name/],
    ['a NUL in a config value', external({ config: { note: 'a\u0000b' } }), /body\.config\.note/],
    ['a NUL in a config key', external({ config: { 'a\u0000': 1 } }), /body\.config/],
    // JSON.stringify escapes a lone surrogate as \ud800, which JSON.parse turns back into one.
    ['a lone surrogate in config', external({ config: { lr: '\ud800' } }), /body\.config\.lr/],
    ['an escape sequence in a run name', external({ name: 'x\u001b]0;pwned\u0007' }), /body\.name/],
    ['a carriage return in a run name', external({ name: 'ok\rEVIL' }), /body\.name/],
    ['a C1 control in a run name', external({ name: 'x\u009b31m' }), /body\.name/],
    ['a NUL in a training run name', JSON.stringify(trainBody({ name: 'a\u0000' })), /body\.name/],
  ];
  for (const [what, body, field] of cases) {
    it(`refuses ${what} with a 400 naming the field`, async () => {
      expectProblem(await send({ body }), 400, field);
    });
  }

  it('refuses a NUL in the error of a finish with a 400, before looking for the run', async () => {
    const res = await send({
      path: '/v1/runs/00000000-0000-4000-8000-000000000000/finish',
      body: JSON.stringify({ status: 'failed', error: 'boom\u0000' }),
    });
    expectProblem(res, 400, /body\.error/);
  });
});

describe('bodies built to exhaust the parser', () => {
  it('refuses JSON nested 20,000 deep with a 400 naming the depth limit', async () => {
    const depth = 20_000;
    const body = `{"kind":"external","name":"deep","config":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    expectProblem(await send({ body }), 400, /nest.*64/);
  });

  it('refuses a deeply nested config within the body depth limit with a 400 naming body.config', async () => {
    let config: unknown = 1;
    for (let i = 0; i < 40; i++) config = { a: config };
    const res = await send({
      body: JSON.stringify({ kind: 'external', name: 'deep', config: { nested: config } }),
    });
    expectProblem(res, 400, /body\.config/);
  });

  it('refuses a config holding a 20,000-element array with a 400 naming body.config', async () => {
    const res = await send({
      body: JSON.stringify({
        kind: 'external',
        name: 'wide',
        config: { xs: new Array(20_000).fill(0) },
      }),
    });
    expectProblem(res, 400, /body\.config/);
  });
});

describe('cursors that decode to nonsense', () => {
  for (const date of ['-100000-01-01T00:00:00.000Z', '+200000-01-01T00:00:00.000Z', '0000-01-01']) {
    it(`refuses a cursor dated ${date} with a 400`, async () => {
      const cursor = Buffer.from(
        JSON.stringify([date, '00000000-0000-4000-8000-000000000000']),
      ).toString('base64url');
      expectProblem(
        await send({ method: 'GET', path: `/v1/runs?cursor=${cursor}`, contentType: null }),
        400,
        /query\.cursor/,
      );
    });
  }
});

describe('bodies that lie about themselves', () => {
  /** Sends raw HTTP over a socket and resolves with the status line, or 'no answer' at `waitMs`. */
  function rawRequest(head: string, body: Buffer, waitMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const { port, hostname } = new URL(api.url);
      const socket = net.connect(Number(port), hostname, () => {
        socket.write(head);
        socket.write(body);
      });
      let received = '';
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(received.split('\r\n')[0] || 'no answer');
      }, waitMs);
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
        if (received.includes('\r\n\r\n')) {
          clearTimeout(timer);
          socket.destroy();
          resolve(received.split('\r\n')[0]!);
        }
      });
      socket.on('error', reject);
    });
  }

  it('answers Content-Length: 2000000000 with 413 from the header, before the body arrives', async () => {
    const status = await rawRequest(
      'POST /v1/runs HTTP/1.1\r\n' +
        `Host: x\r\nAuthorization: Bearer ${api.key}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n',
      Buffer.from('{"kind": "external", "name": "'),
      // Generous: the answer needs no body, so it comes at once; without the fix it never comes.
      10_000,
    );
    expect(status).toBe('HTTP/1.1 413 Payload Too Large');
  });

  it('answers a chunked body that passes the limit with 413 at once, without reading the rest', async () => {
    const chunk = Buffer.from('{"kind": "external", "name": "' + 'y'.repeat(BODY_LIMIT * 2));
    const status = await rawRequest(
      'POST /v1/runs HTTP/1.1\r\n' +
        `Host: x\r\nAuthorization: Bearer ${api.key}\r\n` +
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
      // One chunk past the limit, and the body never ends.
      Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]),
      10_000,
    );
    expect(status).toBe('HTTP/1.1 413 Payload Too Large');
  });

  // The image route reads a raw body: the same early answers, whatever the body's type.
  const predictRoute = 'POST /v1/runs/00000000-0000-4000-8000-000000000000/predict HTTP/1.1\r\n';
  it('answers an image with Content-Length: 2000000000 with 413 from the header', async () => {
    const status = await rawRequest(
      predictRoute +
        `Host: x\r\nAuthorization: Bearer ${api.key}\r\n` +
        'Content-Type: image/png\r\nContent-Length: 2000000000\r\n\r\n',
      Buffer.from([0x89, 0x50, 0x4e, 0x47]),
      10_000,
    );
    expect(status).toBe('HTTP/1.1 413 Payload Too Large');
  });

  it('answers a chunked image that passes PREDICT_MAX_BYTES with 413 at once', async () => {
    const chunk = Buffer.alloc(PREDICT_MAX_BYTES + 1024, 7);
    const status = await rawRequest(
      predictRoute +
        `Host: x\r\nAuthorization: Bearer ${api.key}\r\n` +
        'Content-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n',
      Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]),
      10_000,
    );
    expect(status).toBe('HTTP/1.1 413 Payload Too Large');
  });

  const corrupt: Array<[string, Buffer]> = [
    [
      'gzip',
      Buffer.concat([
        gzipSync('{"kind":"external","name":"z"}').subarray(0, 12),
        Buffer.from('garbage!garbage!'),
      ]),
    ],
    ['br', Buffer.from('not brotli at all, not at all')],
    ['deflate', Buffer.from('not deflate either')],
  ];
  for (const [encoding, body] of corrupt) {
    it(`refuses a corrupt ${encoding} body with a 400 naming the encoding`, async () => {
      const res = await fetch(`${api.url}/v1/runs`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${api.key}`,
          'content-type': 'application/json',
          'content-encoding': encoding,
        },
        body,
      });
      const text = await res.text();
      expect(res.status, text).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
      expect(JSON.parse(text).detail).toContain(encoding);
      expectNoLeak(text);
    });
  }
});
