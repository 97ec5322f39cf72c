/**
 * Checks docker-compose.yml with Debian's `docker-compose` (1.29), with no Docker engine:
 * `docker-compose config` validates the file against the Compose schema and prints it resolved
 * (defaults interpolated, short syntax expanded), which the tests then read. The stack itself is
 * built and run by `npm run test:compose` (compose-smoke.ts), which needs an engine.
 *
 * 1.29 has no `config --format json`, so its YAML is read by `readComposeYaml` below: just the
 * block style PyYAML emits, and anything else throws rather than being misread.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const composeFile = path.join(repoRoot, 'docker-compose.yml');

type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

interface Line {
  indent: number;
  text: string;
}

/** Reads the YAML that PyYAML's block style (`docker-compose config`) produces. */
function readComposeYaml(source: string): Yaml {
  const lines: Line[] = [];
  for (const raw of source.split('\n')) {
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    const text = raw.trimStart();
    lines.push({ indent: raw.length - text.length, text: text.trimEnd() });
  }
  let at = 0;

  const fail = (why: string): never => {
    throw new Error(`readComposeYaml: ${why} at line ${at + 1}: ${lines[at]?.text ?? 'EOF'}`);
  };
  const isItem = (line: Line | undefined): boolean =>
    line !== undefined && (line.text === '-' || line.text.startsWith('- '));

  function unquote(text: string): string {
    if (text.startsWith("'")) {
      if (!/^'(?:[^']|'')*'$/.test(text)) fail('unterminated single-quoted scalar');
      return text.slice(1, -1).replaceAll("''", "'");
    }
    try {
      return JSON.parse(text) as string; // PyYAML's escapes that JSON lacks land in the catch
    } catch {
      return fail('unsupported double-quoted scalar');
    }
  }

  // A scalar that starts on the current line as `first`; a long one continues on the following
  // lines that are indented deeper than `owner` (the column of its key or its `-`).
  function scalar(first: string, owner: number): Yaml {
    const parts = [first];
    at += 1;
    while (at < lines.length && lines[at]!.indent > owner) parts.push(lines[at++]!.text);
    const text = parts.join(' ');
    if (text.startsWith("'") || text.startsWith('"')) return unquote(text);
    if (text === '{}') return {};
    if (text === '[]') return [];
    if (/^[[{&*!|>%@`]/.test(text)) fail('unsupported syntax');
    if (text === 'null' || text === '~') return null;
    if (text === 'true' || text === 'false') return text === 'true';
    if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
    return text;
  }

  function node(minIndent: number): Yaml {
    const line = lines[at];
    if (line === undefined || line.indent < minIndent) return null;
    return isItem(line) ? sequence(line.indent) : mapping(line.indent);
  }

  function sequence(indent: number): Yaml[] {
    const items: Yaml[] = [];
    while (at < lines.length && lines[at]!.indent === indent && isItem(lines[at])) {
      const rest = lines[at]!.text.slice(1).trimStart();
      if (rest === '') {
        at += 1;
        items.push(node(indent + 1));
      } else if (/^[\w.-]+:( |$)/.test(rest)) {
        // `- key: value` opens a mapping whose keys line up two columns in.
        lines[at] = { indent: indent + 2, text: rest };
        items.push(mapping(indent + 2));
      } else {
        items.push(scalar(rest, indent));
      }
    }
    return items;
  }

  function mapping(indent: number): { [key: string]: Yaml } {
    const map: { [key: string]: Yaml } = {};
    while (at < lines.length && lines[at]!.indent === indent && !isItem(lines[at])) {
      const match = /^('(?:[^']|'')*'|"(?:[^"\\]|\\.)*"|[^'"\s][^:]*):(?: (.*)|$)/.exec(
        lines[at]!.text,
      );
      if (!match) return fail('expected `key: value`');
      const key = /^['"]/.test(match[1]!) ? unquote(match[1]!) : match[1]!;
      const rest = match[2]?.trim() ?? '';
      if (rest !== '') {
        map[key] = scalar(rest, indent);
        continue;
      }
      at += 1;
      // PyYAML writes a mapping's list at the mapping's own indent (`key:` then `- item`).
      const next = lines[at];
      if (next !== undefined && next.indent === indent && isItem(next)) map[key] = sequence(indent);
      else map[key] = node(indent + 1);
    }
    return map;
  }

  const result = node(0);
  if (at < lines.length) fail('unexpected indentation');
  return result;
}

type Service = Record<string, Yaml>;

function asRecord(value: Yaml | undefined, what: string): Record<string, Yaml> {
  if (value === null || value === undefined || typeof value !== 'object' || Array.isArray(value))
    throw new Error(`${what} is not a mapping: ${JSON.stringify(value)}`);
  return value;
}

/** Runs Debian's docker-compose on the repository's file, with no outside settings. */
function runDockerCompose(args: string[], envFile: string) {
  const result = spawnSync('docker-compose', ['-f', composeFile, '--env-file', envFile, ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    // Only PATH and HOME: variables such as POSTGRES_PASSWORD or COMPOSE_PROFILES in the
    // caller's shell would otherwise change what the file resolves to.
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(
      'docker-compose is not installed: run `apt-get install -y docker-compose` ' +
        '(.ci/run installs it on CI)',
    );
  }
  if (result.error) throw result.error;
  return result;
}

/** Like runDockerCompose, but a non-zero exit throws with compose's message. */
function dockerCompose(args: string[], envFile: string): { status: number; stdout: string } {
  const result = runDockerCompose(args, envFile);
  if (result.status !== 0) {
    throw new Error(`docker-compose ${args.join(' ')} exited ${result.status}:\n${result.stderr}`);
  }
  return { status: result.status, stdout: result.stdout };
}

/** The secrets compose requires, as a user's `.env` would hold them. */
const SECRETS = {
  POSTGRES_PASSWORD: 'pg-test-secret',
  POSTGRES_APP_PASSWORD: 'pg-app-test-secret',
  REDIS_PASSWORD: 'redis-test-secret',
};
const WORKERS = ['worker-gpu', 'worker-cpu'];

describe('docker-compose.yml', () => {
  let dir: string;
  let envFile: string;
  // `docker-compose config` runs once; its outcome, error included, is kept so that every test
  // fails with the same message (say, how to install docker-compose) instead of being skipped.
  let outcome: { config: Record<string, Yaml> } | { error: unknown } | undefined;

  beforeAll(() => {
    // An env file of our own stands in for a developer's `.env`, which compose would otherwise
    // read: the required secrets and nothing else.
    dir = mkdtempSync(path.join(tmpdir(), 'compose-test-'));
    envFile = path.join(dir, 'secrets.env');
    writeFileSync(
      envFile,
      Object.entries(SECRETS)
        .map(([name, value]) => `${name}=${value}\n`)
        .join(''),
    );
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function resolved(): Record<string, Yaml> {
    if (outcome === undefined) {
      try {
        const stdout = dockerCompose(['config'], envFile).stdout;
        outcome = { config: asRecord(readComposeYaml(stdout), 'config') };
      } catch (error) {
        outcome = { error };
      }
    }
    if ('error' in outcome) throw outcome.error;
    return outcome.config;
  }
  const services = (): Record<string, Yaml> => asRecord(resolved().services, 'services');
  const service = (name: string): Service => asRecord(services()[name], `service ${name}`);

  it('passes `docker-compose config -q` validation', () => {
    // dockerCompose throws with compose's error message on a non-zero exit.
    expect(dockerCompose(['config', '-q'], envFile)).toEqual({ status: 0, stdout: '' });
  });

  it('defines postgres, redis, migrate, api, worker-gpu and worker-cpu', () => {
    expect(Object.keys(services()).sort()).toEqual(
      ['api', 'migrate', 'postgres', 'redis', ...WORKERS].sort(),
    );
  });

  it('publishes a port for the api only, on 127.0.0.1 unless API_PORT says otherwise', () => {
    const publishing = Object.keys(services()).filter((name) => service(name).ports !== undefined);
    expect(publishing).toEqual(['api']);
    // 1.29 prints a port with an address in the short syntax.
    expect(service('api').ports).toEqual(['127.0.0.1:8080:8080/tcp']);
    expect(service('postgres').expose).toBeUndefined();
    expect(service('redis').expose).toBeUndefined();
    // Host networking would put every listening port on the host, published or not.
    for (const name of Object.keys(services()))
      expect(service(name).network_mode, name).toBe(undefined);
  });

  it('publishes the api on every interface when API_PORT is a bare port', () => {
    const open = path.join(dir, 'open.env');
    writeFileSync(open, `${readFileSync(envFile, 'utf8')}API_PORT=9090\n`);
    const config = asRecord(readComposeYaml(dockerCompose(['config'], open).stdout), 'config');
    const api = asRecord(asRecord(config.services, 'services').api, 'api');
    expect(api.ports).toEqual([{ published: 9090, target: 8080 }]);
  });

  it('runs redis with an append-only file, no eviction, and its password in a file, not on a command line', () => {
    const redis = service('redis');
    const script = (redis.entrypoint as string[]).join(' ');
    expect(script).toContain('requirepass');
    expect(script).toContain(
      'redis-server /tmp/redis.conf --appendonly yes --maxmemory-policy noeviction',
    );
    // The password reaches the container only through its environment.
    expect(script).not.toContain(SECRETS.REDIS_PASSWORD);
    expect(redis.command).toBeUndefined();
    expect(asRecord(redis.environment, 'redis environment')).toEqual({
      REDIS_PASSWORD: SECRETS.REDIS_PASSWORD,
      // The health check authenticates through REDISCLI_AUTH, not a password on a command line.
      REDISCLI_AUTH: SECRETS.REDIS_PASSWORD,
    });
  });

  it('refuses to start without any of the three passwords, naming the missing one', () => {
    for (const missing of Object.keys(SECRETS)) {
      const partial = path.join(dir, `without-${missing}.env`);
      writeFileSync(
        partial,
        Object.entries(SECRETS)
          .filter(([name]) => name !== missing)
          .map(([name, value]) => `${name}=${value}\n`)
          .join(''),
      );
      const result = runDockerCompose(['config', '-q'], partial);
      expect(result.status, missing).not.toBe(0);
      expect(result.stderr, missing).toContain(`set ${missing}`);
    }
  });

  it('connects the api and workers as the app role, and only migrate as the owner', () => {
    for (const name of ['api', ...WORKERS]) {
      const env = asRecord(service(name).environment, `${name} environment`);
      expect(env.DATABASE_URL, name).toBe(
        `postgresql://gq_app:${SECRETS.POSTGRES_APP_PASSWORD}@postgres:5432/googlenet_queue`,
      );
      expect(env.REDIS_URL, name).toBe(`redis://:${SECRETS.REDIS_PASSWORD}@redis:6379`);
    }
    expect(asRecord(service('migrate').environment, 'migrate environment')).toMatchObject({
      DATABASE_URL: `postgresql://postgres:${SECRETS.POSTGRES_PASSWORD}@postgres:5432/googlenet_queue`,
      DATABASE_APP_ROLE: 'gq_app',
      DATABASE_APP_PASSWORD: SECRETS.POSTGRES_APP_PASSWORD,
    });
    expect(asRecord(service('postgres').environment, 'postgres environment')).toMatchObject({
      POSTGRES_PASSWORD: SECRETS.POSTGRES_PASSWORD,
    });
  });

  it('passes the API its keys and hardening settings, with CORS off by default', () => {
    expect(asRecord(service('api').environment, 'api environment')).toMatchObject({
      API_KEYS: '',
      CORS_ORIGINS: '',
      TRUST_PROXY: 'false',
      RATE_LIMIT_MAX: '600',
    });
  });

  it('keeps postgres and redis data in named volumes, with health checks', () => {
    expect(service('postgres').image).toBe('postgres:16');
    expect(service('redis').image).toBe('redis:7');
    expect(service('postgres').volumes).toEqual(['postgres-data:/var/lib/postgresql/data:rw']);
    expect(service('redis').volumes).toEqual(['redis-data:/data:rw']);
    expect(Object.keys(asRecord(resolved().volumes, 'volumes'))).toEqual(
      expect.arrayContaining(['postgres-data', 'redis-data', 'artifacts', 'cuda-cache']),
    );
    expect(asRecord(service('postgres').healthcheck, 'healthcheck').test).toContain('pg_isready');
    expect(asRecord(service('redis').healthcheck, 'healthcheck').test).toEqual([
      'CMD-SHELL',
      'redis-cli ping | grep -q PONG',
    ]);
  });

  it('runs migrate once, after postgres is healthy, with the built db:migrate entry', () => {
    const migrate = service('migrate');
    expect(migrate.command).toEqual(['node', 'dist/src/db/migrate-cli.js']);
    expect(migrate.restart).toBe('no');
    expect(migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
  });

  it('starts the api after migrate completes and redis is healthy, and checks /readyz', () => {
    const api = service('api');
    expect(api.depends_on).toMatchObject({
      migrate: { condition: 'service_completed_successfully' },
      redis: { condition: 'service_healthy' },
    });
    expect(api.command).toEqual(['node', 'dist/src/api/main.js']);
    const test = asRecord(api.healthcheck, 'api healthcheck').test as string[];
    expect(test.join(' ')).toContain('/readyz');
  });

  it('gives the GPU worker every GPU of the host, the GPU backend, a CUDA cache volume and the `gpu` profile', () => {
    const worker = service('worker-gpu');
    const deploy = asRecord(worker.deploy, 'worker deploy');
    const reservations = asRecord(asRecord(deploy.resources, 'resources').reservations, 'res');
    expect(reservations.devices).toEqual([
      expect.objectContaining({ driver: 'nvidia', count: 'all', capabilities: ['gpu'] }),
    ]);
    expect(worker.environment).toMatchObject({ TRAIN_BACKEND: 'tfjs-node-gpu' });
    const build = asRecord(worker.build, 'worker build');
    expect(build.target).toBe('worker-gpu');
    expect(asRecord(build.args, 'build args').CUDA_IMAGE).toBe(
      'nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04',
    );
    expect(worker.volumes).toContain('cuda-cache:/cuda-cache:rw');
    expect(worker.profiles).toEqual(['gpu']);
  });

  it('puts the CPU worker in the `cpu` profile with backend auto and no GPU request', () => {
    const worker = service('worker-cpu');
    expect(worker.profiles).toEqual(['cpu']);
    expect(worker.environment).toMatchObject({ TRAIN_BACKEND: 'auto' });
    expect(asRecord(asRecord(worker.build, 'build').args, 'args').TFJS_NODE).toBe('auto');
    expect(worker.deploy).toBeUndefined();
  });

  it('gives both workers 35 s to stop, the shared artifacts volume, and memory and process limits', () => {
    for (const name of WORKERS) {
      const worker = service(name);
      // Longer than the worker's own SHUTDOWN_GRACE_MS (30 s), so the worker ends first.
      expect(worker.stop_grace_period, name).toBe('35s');
      expect(worker.volumes, name).toContain('artifacts:/artifacts:rw');
      expect(worker.depends_on, name).toMatchObject({
        migrate: { condition: 'service_completed_successfully' },
      });
      expect(asRecord(worker.environment, 'environment').ARTIFACT_ROOT, name).toBe('/artifacts');
      expect(worker.mem_limit, name).toBe('16g');
      expect(worker.pids_limit, name).toBe(1024);
    }
  });

  it('lists `cpu` and `gpu` as the profiles, one worker each', () => {
    expect(
      dockerCompose(['config', '--profiles'], envFile).stdout.trim().split('\n').sort(),
    ).toEqual(['cpu', 'gpu']);
  });
});

describe('readComposeYaml', () => {
  it('reads nested maps, indentless lists, list items that are maps and quoted scalars', () => {
    const source = [
      'services:',
      '  api:',
      '    command:',
      '    - node',
      '    - "yes"',
      "    - 'it''s a long",
      "      wrapped one'",
      '    devices:',
      '    - capabilities:',
      '      - gpu',
      '      count: 1',
      '    empty: {}',
      "version: '3.9'",
      '',
    ].join('\n');
    expect(readComposeYaml(source)).toEqual({
      services: {
        api: {
          command: ['node', 'yes', "it's a long wrapped one"],
          devices: [{ capabilities: ['gpu'], count: 1 }],
          empty: {},
        },
      },
      version: '3.9',
    });
  });

  it('refuses syntax it does not know instead of misreading it', () => {
    expect(() => readComposeYaml('a: &anchor 1\n')).toThrow(/unsupported/);
    expect(() => readComposeYaml('a: [1, 2]\n')).toThrow(/unsupported/);
    expect(() => readComposeYaml('a: |\n  text\n')).toThrow(/unsupported/);
  });
});
