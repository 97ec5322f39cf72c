#!/usr/bin/env node
/**
 * gq: the command line for the API (npm run cli -- <command>, or the `gq` bin once built).
 *
 *   gq submit config.json [--idempotency-key K]   submit a run (the file is the POST /v1/runs body)
 *   gq list [--status S] [--kind K] [--limit N]    newest runs first
 *   gq show ID                                     a run, its progress and latest metrics
 *   gq watch ID                                    a live progress bar until the run ends (events)
 *   gq cancel ID
 *
 * Every command takes --url (or GQ_API_URL, default http://localhost:8080), --key (or
 * GQ_API_KEY) and --json (print the API's JSON instead of text). Exit status: 0 done, 1 the run
 * failed or was cancelled (watch) or the API refused, 2 a usage error.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadCliConfig } from '../config.js';
import { ApiError, createApiClient, type RunResponse } from './api-client.js';
import { followRun } from './follow-run.js';
import { progressLine } from './run-progress.js';

const USAGE = `usage: gq <command> [options]
  submit CONFIG.json [--idempotency-key K]
  list [--status queued|running|succeeded|failed|cancelled] [--kind train|eval|external] [--limit N] [--cursor C]
  show ID
  watch ID
  cancel ID
options: --url URL (GQ_API_URL)  --key KEY (GQ_API_KEY)  --json
`;

class UsageError extends Error {}

const out = (text: string) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);

function describeRun(run: RunResponse): string {
  const lines = [
    `id        ${run.id}`,
    `name      ${run.name ?? '-'}`,
    `status    ${run.status}${run.error ? ` (${run.error.name}: ${run.error.message})` : ''}`,
    `progress  ${progressLine(run)}`,
    `created   ${run.createdAt}`,
    `started   ${run.startedAt ?? '-'}`,
    `finished  ${run.finishedAt ?? '-'}`,
    `backend   ${run.backend ?? '-'}   attempts ${run.attempts}`,
  ];
  for (const [name, point] of Object.entries(run.latestMetrics ?? {}))
    lines.push(`  ${name.padEnd(22)} ${point.value.toPrecision(4)} (step ${point.step})`);
  if (run.result) lines.push(`result    ${JSON.stringify(run.result)}`);
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
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
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, arg] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  const env = loadCliConfig();
  const apiKey = values.key ?? env.GQ_API_KEY;
  if (!apiKey) throw new UsageError('an API key is needed: --key or GQ_API_KEY');
  const client = createApiClient({ baseUrl: values.url ?? env.GQ_API_URL, apiKey });
  const needId = (): string => {
    if (!arg) throw new UsageError(`gq ${command} needs a run id`);
    return arg;
  };
  const print = (json: unknown, text: () => string) =>
    out(values.json ? JSON.stringify(json, null, 2) : text());

  switch (command) {
    case 'submit': {
      if (!arg) throw new UsageError('gq submit needs a config file (the POST /v1/runs body)');
      let body: unknown;
      try {
        body = JSON.parse(await readFile(arg, 'utf8'));
      } catch (error) {
        throw new UsageError(`cannot read ${arg}: ${(error as Error).message}`);
      }
      const run = await client.submit(body as Parameters<typeof client.submit>[0], {
        idempotencyKey: values['idempotency-key'],
      });
      print(run, () => `${run.id} ${run.status}`);
      return 0;
    }
    case 'list': {
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
              [r.id, r.status.padEnd(9), (r.name ?? '-').padEnd(20), r.createdAt].join('  '),
            ),
            ...(page.nextCursor ? [`more: --cursor ${page.nextCursor}`] : []),
          ].join('\n') || 'no runs',
      );
      return 0;
    }
    case 'show': {
      const run = await client.get(needId());
      print(run, () => describeRun(run));
      return 0;
    }
    case 'cancel': {
      const run = await client.cancel(needId());
      print(run, () =>
        run.status === 'cancelled'
          ? `${run.id} cancelled`
          : `${run.id} stopping (was ${run.status})`,
      );
      return 0;
    }
    case 'watch': {
      const id = needId();
      // On a terminal the line redraws in place; in a pipe each change is a new line.
      const redraw = process.stdout.isTTY === true && !values.json;
      let last = '';
      const run = await followRun(client, id, {
        onChange(run) {
          const line = values.json ? JSON.stringify(run) : progressLine(run);
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
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof ApiError) {
    process.stderr.write(`gq: ${error.message}\n`);
    for (const e of error.problem.errors ?? []) process.stderr.write(`  ${e.path}: ${e.message}\n`);
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
