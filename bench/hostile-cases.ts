/**
 * The catalogue bench/hostile.ts sends: hostile requests a holder of a valid key can make, each
 * with what a robust API answers. `refuse`: a 4xx problem+json (or a 503 with Retry-After) with
 * no stack trace and nothing from outside DATA_ROOT in it. `accept`: a 2xx.
 */
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { rawRequest } from './raw-http.js';

export interface Answer {
  status: number;
  contentType: string;
  retryAfter: string | null;
  body: string;
}

export interface CaseContext {
  base: string;
  apiKey: string;
  /** A running external run that may take metric points. */
  externalRunId: string;
  /** Running external runs a case may finish (one each). */
  spareExternalRunIds: string[];
  /** A finished training run with a checkpoint (predict, eval). */
  trainedRunId: string;
}

export interface HostileCase {
  group: string;
  name: string;
  expect: 'refuse' | 'accept';
  send(ctx: CaseContext): Promise<Answer>;
}

async function call(
  ctx: CaseContext,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`${ctx.base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ctx.apiKey}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body,
    signal: AbortSignal.timeout(120_000),
  });
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    retryAfter: res.headers.get('retry-after'),
    body: await res.text(),
  };
}

const post = (ctx: CaseContext, path: string, body: unknown, headers?: Record<string, string>) =>
  call(ctx, 'POST', path, typeof body === 'string' ? body : JSON.stringify(body), headers);

/** Answers from a raw exchange, for the cases fetch cannot send. */
function fromRaw(raw: { status: number; text: string }): Answer {
  const head = raw.text.split('\r\n\r\n')[0] ?? '';
  const header = (name: string) =>
    new RegExp(`^${name}: *(.*)$`, 'im').exec(head)?.[1]?.trim() ?? null;
  return {
    status: raw.status,
    contentType: header('content-type') ?? '',
    retryAfter: header('retry-after'),
    body: raw.text.slice(head.length),
  };
}

const train = (overrides: Record<string, unknown> = {}) => ({
  kind: 'train',
  name: 'hostile',
  model: { arch: 'googlenet', numClasses: 4, inputSize: 32, width: 0.125 },
  dataset: { format: 'synthetic', numClasses: 4, size: 64, seed: 1 },
  train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 } },
  ...overrides,
});
const fileData = (format: string, path: string, numClasses = 10, split = 'train') => ({
  format,
  path,
  numClasses,
  split,
});
const withData = (dataset: Record<string, unknown>) =>
  train({
    model: { arch: 'googlenet', numClasses: dataset['numClasses'], inputSize: 32, width: 0.125 },
    dataset,
  });
const external = (config: unknown, name = 'hostile-external') =>
  `{"kind":"external","name":${JSON.stringify(name)},"config":${typeof config === 'string' ? config : JSON.stringify(config)}}`;
const cursor = (date: string) =>
  Buffer.from(JSON.stringify([date, '00000000-0000-0000-0000-000000000000'])).toString('base64url');

let idempotencySerial = 0;

const requests: HostileCase[] = [
  ...(
    [
      ['NUL in a run name', train({ name: 'a\u0000b' })],
      ['ESC sequence in a run name', train({ name: '\u001b[2J\u001b[Hpwned' })],
      ['C1 control (CSI) in a run name', train({ name: 'x\u009b31m' })],
      ['priority above 100', train({ priority: 101 })],
      ['__proto__ key in the body', '{"kind":"train","__proto__":{"admin":true}}'],
      ['constructor.prototype in the body', '{"kind":"train","constructor":{"prototype":{"x":1}}}'],
      ['a bare JSON string', '"hello"'],
      ['malformed JSON', '{"kind":'],
    ] as const
  ).map(([name, body]): HostileCase => ({
    group: 'bodies',
    name,
    expect: 'refuse',
    send: (ctx) => post(ctx, '/v1/runs', body),
  })),
  ...(
    [
      ['NUL in an external run config', external({ a: 'x\u0000y' })],
      ['a lone surrogate in a config', external('{"a":"\\ud800"}')],
      ['a config nested 20,000 deep (arrays)', external('['.repeat(20_000) + ']'.repeat(20_000))],
      [
        'a config nested 20,000 deep (objects)',
        external('{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000)),
      ],
      ['a 1 MB config', external({ blob: 'x'.repeat(1_000_000) })],
      [
        'a config with a 450,000-element array (0.9 MB)',
        external(`[${Array(450_000).fill(0).join(',')}]`),
      ],
    ] as const
  ).map(([name, body]): HostileCase => ({
    group: 'configs',
    name,
    expect: 'refuse',
    send: (ctx) => post(ctx, '/v1/runs', body),
  })),
  {
    group: 'bodies',
    name: 'Content-Length: 2000000000 (answered from the header)',
    expect: 'refuse',
    send: async (ctx) => {
      const url = new URL(ctx.base);
      const raw = await rawRequest(
        ctx.base,
        `POST /v1/runs HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${ctx.apiKey}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 2000000000',
        '{"kind":',
        3000,
      );
      return fromRaw(raw);
    },
  },
  {
    group: 'bodies',
    name: 'a gzip body that is not gzip',
    expect: 'refuse',
    send: (ctx) => post(ctx, '/v1/runs', 'this is not gzip', { 'content-encoding': 'gzip' }),
  },
  {
    group: 'bodies',
    name: 'a corrupt brotli body',
    expect: 'refuse',
    send: (ctx) => post(ctx, '/v1/runs', 'garbage \u0001\u0002', { 'content-encoding': 'br' }),
  },
  {
    group: 'bodies',
    name: 'a gzip body inflating to 64 MB',
    expect: 'refuse',
    send: (ctx) =>
      call(ctx, 'POST', '/v1/runs', gzipSync(Buffer.alloc(64 << 20, 32)), {
        'content-encoding': 'gzip',
      }),
  },
  {
    group: 'bodies',
    name: 'a 3 MB body',
    expect: 'refuse',
    send: (ctx) => post(ctx, '/v1/runs', external({ blob: 'x'.repeat(3_000_000) })),
  },
  {
    group: 'bodies',
    name: 'text/plain body',
    expect: 'refuse',
    send: (ctx) => post(ctx, '/v1/runs', 'kind=train', { 'content-type': 'text/plain' }),
  },
  ...(['gzip-different-kind', 'same-kind-other-name'] as const).map((variant): HostileCase => ({
    group: 'idempotency',
    name: `an Idempotency-Key reused with a different body (${variant})`,
    expect: 'refuse',
    send: async (ctx) => {
      const key = `hostile-${process.pid}-${Date.now()}-${idempotencySerial++}`;
      const first = await post(ctx, '/v1/runs', external({}, 'first'), { 'idempotency-key': key });
      if (first.status !== 201) return first;
      const second =
        variant === 'gzip-different-kind' ? JSON.stringify(train()) : external({}, 'second');
      return post(ctx, '/v1/runs', second, { 'idempotency-key': key });
    },
  })),
  ...(
    [
      ['a cursor with a date before year -4713', cursor('-271821-04-20T00:00:00.000Z')],
      ['a cursor with year 275760', cursor('+275760-09-13T00:00:00.000Z')],
      ['a cursor that is not one', 'bm90IGEgY3Vyc29y'],
      ['limit=0', undefined],
    ] as const
  ).map(([name, value]): HostileCase => ({
    group: 'queries',
    name,
    expect: 'refuse',
    send: (ctx) =>
      call(ctx, 'GET', value === undefined ? '/v1/runs?limit=0' : `/v1/runs?cursor=${value}`),
  })),
  {
    group: 'queries',
    name: '__proto__ in a query string',
    expect: 'refuse',
    send: (ctx) => call(ctx, 'GET', '/v1/runs?__proto__[x]=1'),
  },
  {
    group: 'queries',
    name: 'an unknown route',
    expect: 'refuse',
    send: (ctx) => call(ctx, 'GET', '/v1/nothing-here'),
  },
  {
    group: 'queries',
    name: 'a run id that is not a UUID',
    expect: 'refuse',
    send: (ctx) => call(ctx, 'GET', '/v1/runs/..%2F..%2Fetc'),
  },
  {
    group: 'queries',
    name: 'cancel of an unknown run',
    expect: 'refuse',
    send: (ctx) => post(ctx, '/v1/runs/00000000-0000-4000-8000-000000000000/cancel', '{}'),
  },
  {
    group: 'metrics',
    name: 'one metric batch with 10,000 series names',
    expect: 'refuse',
    send: (ctx) =>
      post(ctx, `/v1/runs/${ctx.externalRunId}/metrics`, {
        points: Array.from({ length: 10_000 }, (_, i) => ({ name: `s/n${i}`, step: 1, value: i })),
      }),
  },
  {
    group: 'metrics',
    name: 'a 2,000-character metric name',
    expect: 'refuse',
    send: (ctx) =>
      post(ctx, `/v1/runs/${ctx.externalRunId}/metrics`, {
        points: [{ name: 'a'.repeat(2000), step: 1, value: 1 }],
      }),
  },
  {
    group: 'metrics',
    name: 'NUL in a finish error',
    expect: 'refuse',
    send: (ctx) =>
      post(ctx, `/v1/runs/${ctx.spareExternalRunIds.pop() ?? ctx.externalRunId}/finish`, {
        status: 'failed',
        error: 'broken\u0000here',
      }),
  },
  {
    group: 'metrics',
    name: 'points for a run that is not external',
    expect: 'refuse',
    send: (ctx) =>
      post(ctx, `/v1/runs/${ctx.trainedRunId}/metrics`, {
        points: [{ name: 'x', step: 1, value: 1 }],
      }),
  },
];

const data: HostileCase[] = (
  [
    ['a 1,000-character dataset.path', fileData('idx', 'x'.repeat(1000))],
    ['a dataset.path through a regular file', fileData('idx', 'file.idx/x')],
    ['a dataset.path that is a symlink loop', fileData('idx', 'loop')],
    ['a dataset.path under a symlink loop', fileData('imagefolder', 'loop/x', 2)],
    ['a `.gz` IDX file that is not gzip', fileData('idx', 'notgz')],
    ['a `.gz` IDX images file that inflates to a bomb', fileData('idx', 'bomb')],
    ['train/ and val/ symlinked out of DATA_ROOT', fileData('imagefolder', 'escape', 2)],
    ['a split folder symlinked out, named directly', fileData('imagefolder', 'escape/train', 2)],
    ['a `..` in dataset.path', fileData('idx', '../etc')],
    ['an absolute dataset.path', fileData('idx', '/etc')],
    ['a percent-encoded dataset.path', fileData('idx', '%2e%2e/etc')],
  ] as const
).map(([name, dataset]): HostileCase => ({
  group: 'data sets',
  name,
  expect: 'refuse',
  send: (ctx) => post(ctx, '/v1/runs', withData(dataset)),
}));

const evalOutside: HostileCase = {
  group: 'data sets',
  name: 'an eval on split folders symlinked out (no outside names in the answer)',
  expect: 'refuse',
  send: (ctx) =>
    post(ctx, '/v1/runs', {
      kind: 'eval',
      checkpoint: { runId: ctx.trainedRunId, which: 'latest' },
      dataset: { format: 'imagefolder', path: 'escape', numClasses: 4, split: 'test' },
    }),
};

async function image(format: 'tiff' | 'gif' | 'png', size: number): Promise<Buffer> {
  const raw = Buffer.alloc(size * size * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } })
    .toFormat(format)
    .toBuffer();
}

const predict: HostileCase[] = [
  ...(['tiff', 'gif'] as const).map((format): HostileCase => ({
    group: 'predict',
    name: `a ${format.toUpperCase()} sent as image/png`,
    expect: 'refuse',
    send: async (ctx) =>
      call(ctx, 'POST', `/v1/runs/${ctx.trainedRunId}/predict`, await image(format, 64), {
        'content-type': 'image/png',
      }),
  })),
  {
    group: 'predict',
    name: 'an SVG sent as image/png',
    expect: 'refuse',
    send: (ctx) =>
      call(
        ctx,
        'POST',
        `/v1/runs/${ctx.trainedRunId}/predict`,
        '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>',
        { 'content-type': 'image/png' },
      ),
  },
  {
    group: 'predict',
    name: 'Content-Length: 2000000000 on predict (answered from the header)',
    expect: 'refuse',
    send: async (ctx) => {
      const url = new URL(ctx.base);
      const raw = await rawRequest(
        ctx.base,
        `POST /v1/runs/${ctx.trainedRunId}/predict HTTP/1.1\r\nHost: ${url.host}\r\n` +
          `Authorization: Bearer ${ctx.apiKey}\r\nContent-Type: image/png\r\nContent-Length: 2000000000`,
        Buffer.alloc(16),
        3000,
      );
      return fromRaw(raw);
    },
  },
];

const jobs: HostileCase[] = [
  {
    group: 'jobs',
    name: '512x512 input, batch 4096, width 4 (cannot fit any worker)',
    expect: 'refuse',
    send: (ctx) =>
      post(
        ctx,
        '/v1/runs',
        train({
          model: { arch: 'googlenet', numClasses: 4, inputSize: 512, width: 4 },
          dataset: { format: 'synthetic', numClasses: 4, size: 8192, seed: 1 },
          train: { epochs: 1, batchSize: 4096, optimizer: { type: 'adam', learningRate: 0.002 } },
        }),
      ),
  },
];

jobs.push({
  group: 'jobs',
  name: '512x512 input, batch 1024, width 2 (valid, but no worker has the memory)',
  expect: 'refuse',
  send: (ctx) =>
    post(
      ctx,
      '/v1/runs',
      train({
        model: { arch: 'googlenet', numClasses: 4, inputSize: 512, width: 2 },
        dataset: { format: 'synthetic', numClasses: 4, size: 8192, seed: 1 },
        train: { epochs: 1, batchSize: 1024, optimizer: { type: 'adam', learningRate: 0.002 } },
      }),
    ),
});

const auth: HostileCase[] = [
  {
    group: 'auth',
    name: 'no Authorization header',
    expect: 'refuse',
    send: (ctx) => call(ctx, 'GET', '/v1/runs', undefined, { authorization: '' }),
  },
  {
    group: 'auth',
    name: 'a valid key after 400 unknown keys from the same address',
    expect: 'accept',
    send: async (ctx) => {
      for (let i = 0; i < 400; i++) {
        await call(ctx, 'GET', '/v1/runs?limit=1', undefined, {
          authorization: `Bearer gq_unknown_${i}_${'z'.repeat(32)}`,
        });
      }
      return call(ctx, 'GET', '/v1/runs?limit=1');
    },
  },
];

/** Every case, in the order they are sent (auth last: it exercises the failed-key limit). */
export function hostileCases(): HostileCase[] {
  return [...requests, ...data, evalOutside, ...predict, ...jobs, ...auth];
}
