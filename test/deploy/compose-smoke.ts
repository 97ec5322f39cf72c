/**
 * npm run test:compose
 *
 * The compose stack as a new user meets it, on whatever Docker engine answers: the setup line
 * writes the settings, the images are built, `up` starts the stack with no flags and no service
 * list, a key is made the documented way, a small training run is trained to success, the worker
 * is stopped mid-run and the run resumes with every step exactly once, and the run survives
 * `down` / `up`. Then `down -v`. Every step that fails stops the test with exit status 1 and the
 * tail of the log of the command that failed.
 *
 * It prints the figures a deployment cares about: build (first, then cached), image sizes,
 * `up` -> API healthy, submit -> first step. `--json` prints them as JSON on the last line.
 *
 * Runs in its own compose project (`gqsmoke<random>`), with its own env file, data folder and a
 * free loopback port: a developer's own `.env`, stack and volumes are left alone.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApiClient, type ApiClient } from '../../src/client/api-client.js';
import { freePort } from '../helpers/private-services.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const json = process.argv.includes('--json');
const work = mkdtempSync(path.join(tmpdir(), 'gq-compose-smoke-'));
const logFile = path.join(work, 'compose.log');
const envFile = path.join(work, 'env');
const project = `gqsmoke${process.pid}`;
const figures: Record<string, number | string> = {};
const started = Date.now();

class SmokeFailure extends Error {}

function say(message: string): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[compose-smoke ${seconds}s] ${message}\n`);
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new SmokeFailure(message);
}

/** `docker compose` (v2) where the plugin exists, else Debian's `docker-compose` 1.29. */
function composeCommand(): string[] {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) {
    return ['docker', 'compose'];
  }
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) {
    return ['docker-compose'];
  }
  throw new SmokeFailure('neither `docker compose` nor `docker-compose` is installed');
}
const [composeBin, ...composePre] = composeCommand();

/** Runs a command with its output appended to the log; resolves with its stdout. */
function run(bin: string, args: string[], options: { allowFail?: boolean } = {}): Promise<string> {
  appendFileSync(logFile, `\n$ ${bin} ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      appendFileSync(logFile, chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => appendFileSync(logFile, chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 || options.allowFail) resolve(stdout);
      else reject(new SmokeFailure(`\`${bin} ${args.join(' ')}\` exited with ${code}`));
    });
  });
}

const compose = (args: string[], options?: { allowFail?: boolean }): Promise<string> =>
  run(
    composeBin!,
    [...composePre, '-p', project, '--env-file', envFile, '-f', 'docker-compose.yml', ...args],
    options,
  );

async function timed<T>(figure: string, work: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const result = await work();
  figures[figure] = Number(((Date.now() - t0) / 1000).toFixed(1));
  return result;
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new SmokeFailure(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The one container of a service in this project. */
async function containerOf(service: string): Promise<string> {
  const id = (await compose(['ps', '-q', service])).trim();
  check(id !== '', `no container for service ${service}`);
  return id;
}

const envValue = (name: string): string => {
  const line = readFileSync(envFile, 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}=`));
  check(line !== undefined, `${name} missing from the env file`);
  return line.slice(name.length + 1);
};

async function waitHealthy(baseUrl: string): Promise<void> {
  await waitFor('the API answers /readyz', 180_000, async () =>
    (await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(5000) })).ok ? true : undefined,
  );
}

/** The small run: 56 steps of a quarter-width GoogLeNet on generated 32x32 images. */
const RUN_BODY = {
  kind: 'train' as const,
  name: 'compose-smoke',
  model: { arch: 'googlenet' as const, numClasses: 10, inputSize: 32, width: 0.25 },
  dataset: { format: 'synthetic' as const, numClasses: 10, size: 512, seed: 7 },
  train: { epochs: 4, batchSize: 32, optimizer: { type: 'adam' as const, learningRate: 0.002 } },
  checkpoint: { everySteps: 8, keepLatest: 2 },
};

async function trainAndResume(client: ApiClient): Promise<string> {
  const submittedAt = Date.now();
  const submitted = await client.submit(RUN_BODY);
  say(`submitted run ${submitted.id}`);
  await waitFor('the run reports its first step', 180_000, async () => {
    const run = await client.get(submitted.id);
    return (run.progress?.step ?? 0) >= 1 ? run : undefined;
  });
  figures.submitToFirstStepSeconds = Number(((Date.now() - submittedAt) / 1000).toFixed(1));

  // Mid-run: the training child must hold no credentials, then the worker is stopped.
  const midRun = await waitFor('the run passes step 12', 180_000, async () => {
    const run = await client.get(submitted.id);
    check(run.status !== 'succeeded', 'the run ended before the worker could be stopped');
    return (run.progress?.step ?? 0) >= 12 ? run : undefined;
  });
  const worker = await containerOf('worker-cpu');
  const childEnv = await run('docker', [
    'exec',
    worker,
    'sh',
    '-c',
    // Every process whose command line names the child entry, but this shell itself.
    'for p in /proc/[0-9]*; do [ "$p" = /proc/$$ ] && continue; ' +
      'grep -q training-child "$p/cmdline" 2>/dev/null && tr "\\0" "\\n" < "$p/environ"; done; true',
  ]);
  check(childEnv.includes('NODE_ENV='), 'found no training child to inspect');
  check(
    !/^(DATABASE_URL|REDIS_URL|API_KEYS)=/m.test(childEnv),
    'the training child inherited database or Redis credentials',
  );
  say(`stopping the worker at step ${midRun.progress?.step}`);
  await compose(['stop', 'worker-cpu']);
  const stopped = await client.get(submitted.id);
  check(
    stopped.status === 'queued',
    `after the worker stopped the run is ${stopped.status}, not queued`,
  );
  await compose(['start', 'worker-cpu']);

  const done = await waitFor('the run succeeds', 600_000, async () => {
    const run = await client.get(submitted.id);
    check(
      run.status !== 'failed' && run.status !== 'cancelled',
      `the run ${run.status}: ${run.error}`,
    );
    return run.status === 'succeeded' ? run : undefined;
  });
  check(
    done.resumedFromStep !== null && done.resumedFromStep > 0,
    'the run did not resume from a checkpoint',
  );
  figures.backend = done.backend ?? 'unknown';
  say(`succeeded on ${done.backend}, resumed from step ${done.resumedFromStep}`);
  return submitted.id;
}

/** Every step of train/loss exactly once, and the loss fell. */
async function checkMetrics(client: ApiClient, runId: string): Promise<number> {
  const run = await client.get(runId);
  const total = run.progress?.totalSteps ?? 0;
  check(total > 8, `the run says it has ${total} steps`);
  const { series } = await client.metrics(runId, { names: ['train/loss'], maxPoints: 10_000 });
  const steps = series[0]?.points.map((p) => p.step) ?? [];
  const first = steps[0] ?? 0;
  check(
    steps.length === total && steps.every((step, i) => step === first + i),
    `train/loss steps are not each step once: ${steps.length} points for ${total} steps`,
  );
  const values = series[0]!.points.map((p) => p.value);
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  check(mean(values.slice(-8)) < mean(values.slice(0, 8)), 'train/loss did not fall');
  return steps.length;
}

async function main(): Promise<void> {
  check(
    spawnSync('docker', ['info'], { stdio: 'ignore' }).status === 0,
    'no Docker engine answers `docker info`',
  );
  const port = await freePort();
  const dataDir = path.join(work, 'data');
  // The setup line as the README gives it, into this test's own env file.
  const setup = spawnSync('sh', ['deploy/compose/setup.sh'], {
    cwd: repoRoot,
    env: { ...process.env, ENV_FILE: envFile },
    encoding: 'utf8',
  });
  check(setup.status === 0, `setup.sh failed: ${setup.stderr}`);
  check(envValue('COMPOSE_PROFILES') === 'cpu', 'setup.sh chose the GPU profile on this host');
  writeFileSync(
    envFile,
    `${readFileSync(envFile, 'utf8')}API_PORT=127.0.0.1:${port}\nIMAGE_TAG=smoke\nDATA_DIR=${dataDir}\nLOG_LEVEL=warn\n`,
  );
  const baseUrl = `http://127.0.0.1:${port}`;

  say(`building images (${composeBin} ${composePre.join(' ')})`);
  await timed('buildSeconds', () => compose(['build']));
  await timed('rebuildCachedSeconds', () => compose(['build']));
  for (const image of ['googlenet-queue:smoke', 'googlenet-queue-worker-cpu:smoke']) {
    const bytes = Number(
      (await run('docker', ['image', 'inspect', '-f', '{{.Size}}', image])).trim(),
    );
    figures[`imageMB ${image}`] = Math.round(bytes / 1e6);
  }

  say('up');
  await timed('upToHealthySeconds', async () => {
    await compose(['up', '-d']);
    await waitHealthy(baseUrl);
  });
  const services = (await compose(['ps', '--services', '--filter', 'status=running'])).split('\n');
  check(services.includes('worker-cpu'), 'the CPU worker is not running');
  check(!services.includes('worker-gpu'), 'the GPU worker was started on a host without a GPU');
  const published = await run('docker', ['port', await containerOf('api'), '8080']);
  check(/^127\.0\.0\.1:/.test(published.trim()), `the API is published on ${published.trim()}`);
  const redisCmdline = await run('docker', [
    'exec',
    await containerOf('redis'),
    'sh',
    '-c',
    'cat /proc/[0-9]*/cmdline | tr "\\0" " "',
  ]);
  check(
    !redisCmdline.includes(envValue('REDIS_PASSWORD')),
    'the Redis password is on a command line',
  );
  const worker = await containerOf('worker-cpu');
  const limits = (
    await run('docker', [
      'inspect',
      '-f',
      '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}',
      worker,
    ])
  ).trim();
  check(
    limits === `${16 * 1024 ** 3} 1024`,
    `worker limits are "${limits}", not 16g and 1024 pids`,
  );

  say('creating a key the documented way');
  const key = (
    await compose([
      'run',
      '--rm',
      '-T',
      'api',
      'node',
      'dist/src/api/auth/keys-create-cli.js',
      '--name',
      'smoke',
      '--scopes',
      'read,submit',
    ])
  )
    .trim()
    .split('\n')
    .pop()!;
  check(key.startsWith('gq_'), 'keys-create-cli printed no key');
  const client = createApiClient({ baseUrl, apiKey: key });

  const runId = await trainAndResume(client);
  const points = await checkMetrics(client, runId);
  const dashboard = await fetch(`${baseUrl}/`);
  check(
    dashboard.ok && (await dashboard.text()).includes('<html'),
    'the dashboard page did not load',
  );
  const pgRoles = await run('docker', [
    'exec',
    await containerOf('postgres'),
    'psql',
    '-U',
    'postgres',
    '-d',
    'googlenet_queue',
    '-Atc',
    "SELECT DISTINCT usename || ':' || usesuper FROM pg_stat_activity JOIN pg_user USING (usename) WHERE datname = 'googlenet_queue' AND pid <> pg_backend_pid()",
  ]);
  check(pgRoles.trim() === 'gq_app:false', `the app connects to Postgres as ${pgRoles.trim()}`);

  say('down and up again: the run must survive');
  await compose(['down']);
  await compose(['up', '-d']);
  await waitHealthy(baseUrl);
  const again = await client.get(runId);
  check(again.status === 'succeeded', `after down/up the run is ${again.status}`);
  check((await checkMetrics(client, runId)) === points, 'metric points changed across down/up');
  check((await client.checkpoints(runId)).items.length > 0, 'no checkpoints after down/up');
  say('all checks passed');
}

// Seen here: a fetch to the API's published port while the stack starts (docker-proxy accepts,
// then the connection dies) can leave nothing that holds Node's event loop open, and Node then
// exits with status 13 in the middle of the top-level await. A ref'd timer holds it.
const keepAlive = setInterval(() => {}, 1000);
let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  say(`FAILED: ${(error as Error).message}`);
  if (!(error instanceof SmokeFailure)) process.stderr.write(`${(error as Error).stack}\n`);
  const log = readFileSync(logFile, 'utf8').split('\n');
  process.stderr.write(`--- last lines of ${logFile}\n${log.slice(-60).join('\n')}\n`);
  await compose(['logs', '--no-color', '--tail', '40'], { allowFail: true })
    .then((logs) => process.stderr.write(`--- service logs\n${logs}\n`))
    .catch(() => {});
} finally {
  await compose(['down', '-v', '--remove-orphans'], { allowFail: true }).catch(() => {});
}
clearInterval(keepAlive);
figures.totalSeconds = Number(((Date.now() - started) / 1000).toFixed(1));
for (const [name, value] of Object.entries(figures)) {
  process.stdout.write(`${name.padEnd(48)} ${value}\n`);
}
if (json) process.stdout.write(`${JSON.stringify(figures)}\n`);
if (!failed) rmSync(work, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
