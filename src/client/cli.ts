#!/usr/bin/env node
/**
 * gq: the command line for the API (npm run cli -- <command>, or the `gq` bin once built).
 *
 *   gq submit config.json [--idempotency-key K]   submit a run (the file is the POST /v1/runs body)
 *   gq list [--status S] [--kind K] [--limit N]    newest runs first
 *   gq show ID                                     a run, its progress and latest metrics
 *   gq watch ID                                    a live progress bar until the run ends (events)
 *   gq cancel ID
 *   gq eval RUN_ID --checkpoint best|latest|step:N --dataset FILE.json [--batch-size N]
 *                                                  evaluate a checkpoint of a training run
 *
 * External runs (trained elsewhere, logged here):
 *
 *   gq external NAME [--config FILE.json]          open one: prints "<id> running"
 *   gq log ID --step N name=value [name=value ...] points at one step
 *   gq log ID --file points.jsonl                  a file of {name, step, value, time?} lines
 *   gq finish ID [--status succeeded|failed|cancelled] [--error MESSAGE]
 *
 * Every command takes --url (or GQ_API_URL, default http://localhost:8080), --key (or
 * GQ_API_KEY) and --json (print the API's JSON instead of text). Exit status: 0 done, 1 the run
 * failed or was cancelled (watch) or the API refused, 2 a usage error.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { MAX_POINTS_PER_REQUEST } from '../api/metrics/metrics.schemas.js';
import { loadCliConfig } from '../config.js';
import {
  ApiError,
  createApiClient,
  type ApiClient,
  type MetricPointInput,
  type RunResponse,
} from './api-client.js';
import { followRun } from './follow-run.js';
import { PointsFileError, readPointBatches } from './metric-points-file.js';
import { progressLine } from './run-progress.js';
import { printable, printableJson, printableLines } from './terminal-text.js';

const USAGE = `usage: gq <command> [options]
  submit CONFIG.json [--idempotency-key K]
  list [--status queued|running|succeeded|failed|cancelled] [--kind train|eval|external] [--limit N] [--cursor C]
  show ID
  watch ID
  cancel ID
  eval RUN_ID --checkpoint best|latest|step:N --dataset DATASET.json [--batch-size N] [--idempotency-key K]
  external NAME [--config CONFIG.json] [--idempotency-key K]
  log ID --step N NAME=VALUE [NAME=VALUE ...]
  log ID --file POINTS.jsonl
  finish ID [--status succeeded|failed|cancelled] [--error MESSAGE]
options: --url URL (GQ_API_URL)  --key KEY (GQ_API_KEY)  --json
`;

/** Points a `log` request carries: the server's limit (the type breaks if the limit changes). */
const POINTS_PER_REQUEST: typeof MAX_POINTS_PER_REQUEST = 10_000;

const FINISH_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;

class UsageError extends Error {}

/** Writes lines to stdout, every control character in them escaped but the newlines. */
const out = (text: string) => {
  const safe = printableLines(text);
  process.stdout.write(safe.endsWith('\n') ? safe : `${safe}\n`);
};

function describeRun(run: RunResponse): string {
  const lines = [
    `id        ${run.id}`,
    `name      ${printable(run.name ?? '-')}`,
    `status    ${run.status}${run.error ? ` (${printable(`${run.error.name}: ${run.error.message}`)})` : ''}`,
    `progress  ${progressLine(run)}`,
    `created   ${run.createdAt}`,
    `started   ${run.startedAt ?? '-'}`,
    `finished  ${run.finishedAt ?? '-'}`,
    `backend   ${run.backend ?? '-'}   attempts ${run.attempts}`,
  ];
  if (run.bestValAccuracy != null)
    lines.push(`best      val/accuracy ${run.bestValAccuracy.toPrecision(4)}`);
  for (const [name, point] of Object.entries(run.latestMetrics ?? {}))
    lines.push(
      `  ${printable(name).padEnd(22)} ${point.value.toPrecision(4)} (step ${point.step})`,
    );
  if (run.result) lines.push(`result    ${printable(JSON.stringify(run.result))}`);
  return lines.join('\n');
}

/** A JSON file the command reads (a run body, a config, a data set); `object`: it must be `{}`. */
async function readJsonFile(file: string, what: string, object = false): Promise<unknown> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${file}: ${(error as Error).message}`);
  }
  if (object && (typeof value !== 'object' || value === null || Array.isArray(value)))
    throw new UsageError(`${what} ${file} must hold a JSON object`);
  return value;
}

/** `name=value` arguments of `gq log` as points at `step`. */
function pointsFromPairs(pairs: string[], step: number): MetricPointInput[] {
  if (pairs.length === 0) throw new UsageError('gq log --step N needs name=value arguments');
  const seen = new Set<string>();
  return pairs.map((pair) => {
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq);
    const text = pair.slice(eq + 1);
    const value = Number(text);
    // Number('') is 0 and Number('1e400') Infinity: neither is a value anyone typed.
    if (eq <= 0 || text.trim() === '' || !Number.isFinite(value))
      throw new UsageError(`'${pair}' is not name=value with a finite number as value`);
    if (seen.has(name)) throw new UsageError(`${name} is given twice`);
    seen.add(name);
    return { name, step, value };
  });
}

/**
 * Posts a points file in requests of POINTS_PER_REQUEST. A refused request names its points by
 * their line in the file; the requests before it were stored (sending them again is harmless).
 */
async function logPointsFile(
  client: ApiClient,
  id: string,
  file: string,
): Promise<{ received: number; inserted: number }> {
  const total = { received: 0, inserted: 0 };
  try {
    for await (const { points, lines } of readPointBatches(file, POINTS_PER_REQUEST)) {
      let answer;
      try {
        answer = await client.logMetrics(id, points);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        const where = (path: string) =>
          path.replace(/^body\.points\.(\d+)/, (_, i: string) => `${file}:${lines[Number(i)]}`);
        throw new ApiError(error.status, {
          ...error.problem,
          detail: `${error.problem.detail} (lines ${lines[0]}-${lines.at(-1)}; inserted ${total.inserted} of ${total.received} before them)`,
          errors: error.problem.errors?.map((e) => ({ ...e, path: where(e.path) })),
        });
      }
      total.received += answer.received;
      total.inserted += answer.inserted;
    }
  } catch (error) {
    if (error instanceof PointsFileError) throw new UsageError(error.message);
    throw error;
  }
  if (total.received === 0) throw new UsageError(`${file} holds no points`);
  return total;
}

/** An integer option of at least `min`, or a usage error naming it. */
function integerOption(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isInteger(value) || value < min)
    throw new UsageError(`--${name} must be an integer of at least ${min}`);
  return value;
}

/** Parses the command line: every command's options are known to all of them. */
function parseCommandLine(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' },
      key: { type: 'string' },
      json: { type: 'boolean', default: false },
      'idempotency-key': { type: 'string' },
      status: { type: 'string' },
      kind: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      checkpoint: { type: 'string' },
      dataset: { type: 'string' },
      'batch-size': { type: 'string' },
      config: { type: 'string' },
      step: { type: 'string' },
      file: { type: 'string' },
      error: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

/** What a command works with: the API client, the parsed options and its own arguments. */
interface CommandContext {
  client: ApiClient;
  values: ReturnType<typeof parseCommandLine>['values'];
  /** The first argument after the command (a file, a name or a run id). */
  arg: string | undefined;
  /** The arguments after that one. */
  rest: string[];
  /** `arg` as a run id, or a usage error when it is missing. */
  needId(): string;
  /** Prints `json` under --json, else `text()`. */
  print(json: unknown, text: () => string): void;
}

/** One gq command; resolves to the exit status. */
type Command = (context: CommandContext) => Promise<number>;

async function submitRun({ client, values, arg, print }: CommandContext): Promise<number> {
  if (!arg) throw new UsageError('gq submit needs a config file (the POST /v1/runs body)');
  const body = await readJsonFile(arg, 'config');
  const run = await client.submit(body as Parameters<typeof client.submit>[0], {
    idempotencyKey: values['idempotency-key'],
  });
  print(run, () => `${run.id} ${run.status}`);
  return 0;
}

async function listRuns({ client, values, print }: CommandContext): Promise<number> {
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  const page = await client.list({
    status: values.status as RunResponse['status'] | undefined,
    kind: values.kind as RunResponse['kind'] | undefined,
    limit,
    cursor: values.cursor,
  });
  print(
    page,
    () =>
      [
        ...page.items.map((r) =>
          [r.id, r.status.padEnd(9), printable(r.name ?? '-').padEnd(20), r.createdAt].join('  '),
        ),
        ...(page.nextCursor ? [`more: --cursor ${page.nextCursor}`] : []),
      ].join('\n') || 'no runs',
  );
  return 0;
}

async function showRun({ client, needId, print }: CommandContext): Promise<number> {
  const run = await client.get(needId());
  print(run, () => describeRun(run));
  return 0;
}

async function cancelRun({ client, needId, print }: CommandContext): Promise<number> {
  const run = await client.cancel(needId());
  print(run, () =>
    run.status === 'cancelled' ? `${run.id} cancelled` : `${run.id} stopping (was ${run.status})`,
  );
  return 0;
}

/** Follows the run to its end; the exit status says whether it succeeded. */
async function watchRun({ client, values, needId }: CommandContext): Promise<number> {
  const id = needId();
  // On a terminal the line redraws in place; in a pipe each change is a new line.
  const redraw = process.stdout.isTTY === true && !values.json;
  let last = '';
  const run = await followRun(client, id, {
    onChange(run) {
      const line = printableLines(
        values.json ? printableJson(JSON.stringify(run)) : progressLine(run),
      );
      if (redraw) process.stdout.write(`\r${line}\x1b[K`);
      else if (line !== last) out(line);
      last = line;
    },
    onDrop(reason) {
      if (redraw) process.stdout.write('\n');
      process.stderr.write(`gq: lost the event stream (${reason}); reconnecting\n`);
    },
  });
  if (redraw) process.stdout.write('\n');
  if (!values.json) out(`${run.id} ${run.status}`);
  return run.status === 'succeeded' ? 0 : 1;
}

async function submitEval({ client, values, needId, print }: CommandContext): Promise<number> {
  const runId = needId();
  const which = values.checkpoint;
  if (!which || !/^(latest|best|step:\d+)$/.test(which))
    throw new UsageError('gq eval needs --checkpoint best, latest or step:N');
  if (!values.dataset) throw new UsageError('gq eval needs --dataset FILE.json (a data set)');
  const dataset = await readJsonFile(values.dataset, 'data set', true);
  const batchSize = integerOption('batch-size', values['batch-size'], 1);
  const run = await client.submit(
    {
      kind: 'eval',
      checkpoint: { runId, which },
      dataset: dataset as Parameters<typeof client.submit>[0]['dataset'],
      ...(batchSize === undefined ? {} : { batchSize }),
    },
    { idempotencyKey: values['idempotency-key'] },
  );
  print(run, () => `${run.id} ${run.status}`);
  return 0;
}

async function openExternalRun({ client, values, arg, print }: CommandContext): Promise<number> {
  if (!arg) throw new UsageError('gq external needs a name for the run');
  const config = values.config
    ? ((await readJsonFile(values.config, 'config', true)) as Record<string, unknown>)
    : undefined;
  const run = await client.createExternal(
    { kind: 'external', name: arg, ...(config ? { config } : {}) },
    { idempotencyKey: values['idempotency-key'] },
  );
  print(run, () => `${run.id} ${run.status}`);
  return 0;
}

/** Logs points of an external run: name=value pairs at one step, or a points file. */
async function logPoints({ client, values, rest, needId, print }: CommandContext): Promise<number> {
  const id = needId();
  const step = integerOption('step', values.step, 0);
  if ((step === undefined) === (values.file === undefined))
    throw new UsageError('gq log needs either --step N name=value ... or --file POINTS.jsonl');
  let answer: { received: number; inserted: number };
  if (values.file !== undefined) {
    if (rest.length > 0) throw new UsageError('gq log --file takes no name=value arguments');
    answer = await logPointsFile(client, id, values.file);
  } else {
    const points = pointsFromPairs(rest, step!);
    answer = await client.logMetrics(id, points);
  }
  print(answer, () => `inserted ${answer.inserted} of ${answer.received}`);
  return 0;
}

async function finishRun({ client, values, needId, print }: CommandContext): Promise<number> {
  const id = needId();
  const status = (values.status ?? 'succeeded') as (typeof FINISH_STATUSES)[number];
  if (!FINISH_STATUSES.includes(status))
    throw new UsageError(`--status must be one of ${FINISH_STATUSES.join(', ')}`);
  const run = await client.finish(id, {
    status,
    ...(values.error === undefined ? {} : { error: values.error }),
  });
  print(run, () => `${run.id} ${run.status}`);
  return 0;
}

/** Every command by the name it is typed as. */
const COMMANDS: Record<string, Command> = {
  submit: submitRun,
  list: listRuns,
  show: showRun,
  cancel: cancelRun,
  watch: watchRun,
  eval: submitEval,
  external: openExternalRun,
  log: logPoints,
  finish: finishRun,
};

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv);
  const [command, arg, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const env = loadCliConfig();
  const apiKey = values.key ?? env.GQ_API_KEY;
  if (!apiKey) throw new UsageError('an API key is needed: --key or GQ_API_KEY');
  const client = createApiClient({ baseUrl: values.url ?? env.GQ_API_URL, apiKey });
  // Own properties only: a command typed as `toString` or `constructor` is unknown, too.
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) throw new UsageError(`unknown command '${command}'`);
  return run({
    client,
    values,
    arg,
    rest,
    needId: () => {
      if (!arg) throw new UsageError(`gq ${command} needs a run id`);
      return arg;
    },
    print: (json, text) => out(values.json ? printableJson(JSON.stringify(json, null, 2)) : text()),
  });
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof ApiError) {
    process.stderr.write(`gq: ${printable(error.message)}\n`);
    for (const e of error.problem.errors ?? [])
      process.stderr.write(`  ${printable(e.path)}: ${printable(e.message)}\n`);
    process.exitCode = 1;
  } else if (
    error instanceof UsageError ||
    (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
  ) {
    process.stderr.write(`gq: ${(error as Error).message}\n${USAGE}`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`gq: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
