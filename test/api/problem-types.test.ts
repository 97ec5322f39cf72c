/**
 * One problem `type` per status, everywhere: every status the API can answer a problem with —
 * those its sources throw (HttpError, problem()), those its routes declare in /openapi.json,
 * body-parser's and the domain errors' — has its own `urn:googlenet-queue:problem:*` type, and
 * the answers carry it (a 422 once came back as `about:blank`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BODY_PARSER_ERRORS,
  domainErrorToHttp,
  PROBLEM_TYPES,
  problem,
  type ProblemStatus,
} from '../../src/api/errors.js';
import { SeriesLimitError } from '../../src/db/metric-series.js';
import * as runErrors from '../../src/runs/run-errors.js';
import { postJson, startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let api: TestApi;

beforeAll(async () => {
  db = await createTestDatabase('api_problem_types');
  queue = await createTestQueue('api-problem-types');
  api = await startApi(db, queue.queue);
});
afterAll(async () => {
  await api?.close();
  await queue?.close();
  await db?.drop();
});

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Statuses src/api throws or answers with: `HttpError(NNN`, `problem(NNN`, `status(NNN)`. */
function statusesInSources(): Set<number> {
  const found = new Set<number>();
  for (const file of sourceFiles(path.resolve('src/api'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:HttpError|problem)\(\s*(\d{3})\b/g)) found.add(Number(m[1]));
    for (const m of text.matchAll(/\.status\((\d{3})\)/g)) found.add(Number(m[1]));
  }
  return found;
}

/** Statuses of the domain errors, through their one mapping. */
function statusesOfDomainErrors(): Set<number> {
  const errors: unknown[] = [
    new SeriesLimitError('r', 1, 1, 1),
    new runErrors.UnusableInputError('body.x', 'm', { malformed: true }),
    new runErrors.UnusableInputError('body.x', 'm'),
  ];
  for (const [name, value] of Object.entries(runErrors)) {
    if (typeof value !== 'function' || !name.endsWith('Error')) continue;
    if (value === runErrors.UnusableInputError) continue;
    errors.push(new (value as new (message: string) => Error)('m'));
  }
  const found = new Set<number>();
  for (const error of errors) {
    const http = domainErrorToHttp(error);
    expect(http, `${(error as Error).name} has an HTTP face`).toBeDefined();
    found.add(http!.status);
  }
  return found;
}

describe('problem types', () => {
  it('gives every status the API can answer its own urn type', async () => {
    const doc: any = await (await fetch(`${api.url}/openapi.json`)).json();
    const declared = Object.values(doc.paths as Record<string, Record<string, any>>).flatMap(
      (methods) => Object.values(methods).flatMap((op) => Object.keys(op.responses).map(Number)),
    );
    const statuses = new Set<number>([
      ...statusesInSources(),
      ...declared,
      ...Object.values(BODY_PARSER_ERRORS).map((f) => f(1)[0]),
      ...statusesOfDomainErrors(),
      404, // notFoundHandler
      500, // errorHandler
    ]);
    const problems = [...statuses].filter((s) => s >= 400).sort();
    expect(problems).toContain(422);
    for (const status of problems) {
      expect(PROBLEM_TYPES, `status ${status}`).toHaveProperty(String(status));
      expect(problem(status as ProblemStatus, 't', 'd').type).toMatch(
        /^urn:googlenet-queue:problem:[a-z-]+$/,
      );
    }
    const types = Object.values(PROBLEM_TYPES);
    expect(new Set(types).size).toBe(types.length);
  });

  it('answers a 422 with its urn type, not about:blank', async () => {
    const res = await postJson(`${api.url}/v1/runs`, {
      kind: 'train',
      model: { arch: 'googlenet', numClasses: 4, inputSize: 32, width: 0.125 },
      dataset: { format: 'idx', path: 'no-such-folder', numClasses: 4 },
      train: { epochs: 1, batchSize: 8, optimizer: { type: 'adam', learningRate: 0.002 } },
    });
    expect(res.status, JSON.stringify(res.json)).toBe(422);
    expect(res.json.type).toBe('urn:googlenet-queue:problem:unprocessable');
  });
});
