import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createDatabase, dropDatabase, withDatabase } from '../../src/db/databases.js';
import {
  createPrismaClient,
  DatabaseUnreachableError,
  migrateDatabase,
  Prisma,
} from '../../src/db/index.js';
import { generateMigration } from '../../src/db/migration-create.js';
import { findPrismaDir } from '../../src/db/migration-files.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const run = promisify(execFile);
const serverUrl = loadConfig().DATABASE_URL;
const migrationsDir = path.join(findPrismaDir(), 'migrations');
const projectRoot = path.dirname(findPrismaDir());

async function committedMigrations(): Promise<string[]> {
  const entries = await readdir(migrationsDir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** A bare database (no migrations) that the test drops itself. */
async function emptyDatabase(label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `gq_test_${label}_${randomBytes(5).toString('hex')}`;
  await createDatabase(serverUrl, name);
  return { url: withDatabase(serverUrl, name), drop: () => dropDatabase(serverUrl, name) };
}

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('db_migrate');
});
afterAll(async () => {
  await db?.drop();
});

describe('migrateDatabase', () => {
  it('migrates a fresh database: every table, and one finished _prisma_migrations row per committed migration with the CLI checksum', async () => {
    const fresh = await emptyDatabase('fresh');
    try {
      const committed = await committedMigrations();
      expect(committed.length).toBeGreaterThan(0);
      expect(await migrateDatabase(fresh.url)).toEqual({ applied: committed });

      const prisma = createPrismaClient(fresh.url);
      try {
        const tables = await prisma.$queryRaw<{ table_name: string }[]>`
          SELECT table_name FROM information_schema.tables
          WHERE table_schema = 'public' ORDER BY table_name`;
        expect(tables.map((t) => t.table_name)).toEqual([
          'ApiKey',
          'Artifact',
          'ArtifactChunk',
          'Checkpoint',
          'MetricPoint',
          'MetricRollup',
          'Run',
          'Worker',
          '_prisma_migrations',
        ]);
        const bookkeeping = await prisma.$queryRaw<
          {
            migration_name: string;
            checksum: string;
            finished_at: Date | null;
            rolled_back_at: Date | null;
            applied_steps_count: number;
          }[]
        >`SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count
          FROM _prisma_migrations ORDER BY migration_name`;
        expect(bookkeeping.map((b) => b.migration_name)).toEqual(committed);
        for (const row of bookkeeping) {
          const script = await readFile(
            path.join(migrationsDir, row.migration_name, 'migration.sql'),
          );
          // The Prisma CLI stores the SHA-256 of migration.sql; `prisma migrate` would flag
          // any other value as an edited migration.
          expect(row.checksum).toBe(createHash('sha256').update(script).digest('hex'));
          expect(row.finished_at).toBeInstanceOf(Date);
          expect(row.rolled_back_at).toBeNull();
          expect(row.applied_steps_count).toBe(1);
        }
      } finally {
        await prisma.$disconnect();
      }
    } finally {
      await fresh.drop();
    }
  });

  it('is a no-op the second time: nothing applied, bookkeeping untouched', async () => {
    const before = await db.prisma.$queryRaw<unknown[]>`SELECT * FROM _prisma_migrations`;
    expect(await migrateDatabase(db.url)).toEqual({ applied: [] });
    expect(await db.prisma.$queryRaw<unknown[]>`SELECT * FROM _prisma_migrations`).toEqual(before);
  });

  it('applies a failing migration all-or-nothing and records the failure', async () => {
    const fresh = await emptyDatabase('failing');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gq-migrations-'));
    try {
      await cp(migrationsDir, dir, { recursive: true });
      const broken = path.join(dir, '99999999999999_broken');
      await mkdir(broken);
      await writeFile(
        path.join(broken, 'migration.sql'),
        'CREATE TABLE "Half" ("x" INTEGER);\nALTER TABLE "NoSuchTable" ADD COLUMN "y" INTEGER;\n',
      );
      await expect(migrateDatabase(fresh.url, { migrationsDir: dir })).rejects.toThrow(
        /99999999999999_broken|NoSuchTable/,
      );
      const prisma = createPrismaClient(fresh.url);
      try {
        const half = await prisma.$queryRaw<unknown[]>`
          SELECT 1 FROM information_schema.tables WHERE table_name = 'Half'`;
        expect(half).toEqual([]);
        const failed = await prisma.$queryRaw<{ migration_name: string }[]>`
          SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NULL`;
        expect(failed.map((f) => f.migration_name)).toEqual(['99999999999999_broken']);
      } finally {
        await prisma.$disconnect();
      }
      // Like `prisma migrate deploy`, it refuses to go on past a failed migration.
      await expect(migrateDatabase(fresh.url, { migrationsDir: dir })).rejects.toThrow(/failed/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await fresh.drop();
    }
  });

  it('runs a migration script whole, semicolons inside strings included', async () => {
    const fresh = await emptyDatabase('semicolon');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gq-migrations-'));
    try {
      await cp(migrationsDir, dir, { recursive: true });
      await mkdir(path.join(dir, '99999999999999_comment'));
      await writeFile(
        path.join(dir, '99999999999999_comment', 'migration.sql'),
        `COMMENT ON TABLE "Run" IS 'one row per run; see src/db';\n`,
      );
      const { applied } = await migrateDatabase(fresh.url, { migrationsDir: dir });
      expect(applied.at(-1)).toBe('99999999999999_comment');
      const prisma = createPrismaClient(fresh.url);
      try {
        const [row] = await prisma.$queryRaw<{ comment: string }[]>`
          SELECT obj_description('"Run"'::regclass, 'pg_class') AS comment`;
        expect(row?.comment).toBe('one row per run; see src/db');
      } finally {
        await prisma.$disconnect();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
      await fresh.drop();
    }
  });

  it('fails fast with the server address when Postgres is unreachable', async () => {
    const started = Date.now();
    const error = await migrateDatabase('postgresql://postgres@127.0.0.1:1/nowhere').catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect((error as Error).message).toMatch(
      /cannot connect to PostgreSQL at 127\.0\.0\.1:1\/nowhere/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('the committed migrations match prisma/schema.prisma (no migration left to create)', async () => {
    // Fails when the schema was edited without `npm run db:migration:create -- --name ...`.
    expect(await generateMigration(serverUrl, { name: 'pending_check' })).toBeNull();
  });
});

describe('npm run db:migrate (src/db/migrate-cli.ts)', () => {
  const cli = ['--import', 'tsx', path.join(projectRoot, 'src/db/migrate-cli.ts')];
  const runCli = (databaseUrl: string) =>
    run(process.execPath, cli, {
      cwd: projectRoot,
      env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' },
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );

  it('migrates a fresh database, then exits 0 with nothing to do', async () => {
    const fresh = await emptyDatabase('cli');
    try {
      const first = await runCli(fresh.url);
      expect(first.code).toBe(0);
      expect(first.stdout).toContain('"msg":"applied migration"');
      const second = await runCli(fresh.url);
      expect(second.code).toBe(0);
      expect(second.stdout).toContain('database schema is up to date');
    } finally {
      await fresh.drop();
    }
  });

  it('exits 1 with a one-line reason when Postgres is unreachable', async () => {
    const result = await runCli('postgresql://postgres@127.0.0.1:1/nowhere');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^db:migrate: cannot connect to PostgreSQL at 127\.0\.0\.1:1\/nowhere: .*ECONNREFUSED/m,
    );
  });
});

describe('schema constraints', () => {
  let runId: string;

  beforeEach(async () => {
    await db.prisma.run.deleteMany();
    runId = (await db.prisma.run.create({ data: { kind: 'train', config: { epochs: 1 } } })).id;
  });

  it('creates runs queued, with a generated uuid and zero attempts', async () => {
    const created = await db.prisma.run.findUniqueOrThrow({ where: { id: runId } });
    expect(created).toMatchObject({ status: 'queued', attempts: 0, priority: 0, kind: 'train' });
    expect(created.id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(created.createdAt).toBeInstanceOf(Date);
  });

  it('rejects a second metric point with the same (runId, name, step)', async () => {
    const point = { runId, name: 'train/loss', step: 3, value: 1.5, wallTime: new Date() };
    await db.prisma.metricPoint.create({ data: point });
    const error = await db.prisma.metricPoint
      .create({ data: { ...point, value: 2.5 } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
    expect((error as Prisma.PrismaClientKnownRequestError).code).toBe('P2002');
    expect(await db.prisma.metricPoint.findMany({ where: { runId } })).toMatchObject([
      { step: 3, value: 1.5 },
    ]);
  });

  it('createMany with skipDuplicates keeps one row per (runId, name, step), and upsert replaces', async () => {
    const wallTime = new Date();
    const batch = [0, 1, 1, 2].map((step) => ({
      runId,
      name: 'train/loss',
      step,
      value: step,
      wallTime,
    }));
    expect(
      (await db.prisma.metricPoint.createMany({ data: batch, skipDuplicates: true })).count,
    ).toBe(3);
    expect(
      (await db.prisma.metricPoint.createMany({ data: batch, skipDuplicates: true })).count,
    ).toBe(0);
    await db.prisma.metricPoint.upsert({
      where: { runId_name_step: { runId, name: 'train/loss', step: 2 } },
      create: { runId, name: 'train/loss', step: 2, value: 20, wallTime },
      update: { value: 20 },
    });
    const rows = await db.prisma.metricPoint.findMany({
      where: { runId },
      orderBy: { step: 'asc' },
    });
    expect(rows.map((r) => [r.step, r.value])).toEqual([
      [0, 0],
      [1, 1],
      [2, 20],
    ]);
    // The rollup levels follow inserts and updates (triggers of the metric_rollups migration).
    const rollup = await db.prisma.metricRollup.findUniqueOrThrow({
      where: { runId_name_level_bucket: { runId, name: 'train/loss', level: 4, bucket: 0 } },
    });
    expect(rollup).toMatchObject({ min: 0, max: 20, last: 20, lastStep: 2, count: 3 });
  });

  it('rejects a second checkpoint at the same step of a run', async () => {
    const checkpoint = {
      runId,
      step: 10,
      epoch: 1,
      location: 'runs/x/step-10',
      bytes: 1n,
      sha256: 'a',
    };
    await db.prisma.checkpoint.create({ data: checkpoint });
    await expect(db.prisma.checkpoint.create({ data: checkpoint })).rejects.toMatchObject({
      code: 'P2002',
    });
  });

  it('rejects a second run with the same idempotency key, but allows many without one', async () => {
    await db.prisma.run.create({ data: { kind: 'eval', config: {}, idempotencyKey: 'k1' } });
    await expect(
      db.prisma.run.create({ data: { kind: 'eval', config: {}, idempotencyKey: 'k1' } }),
    ).rejects.toMatchObject({ code: 'P2002' });
    await db.prisma.run.createMany({
      data: [
        { kind: 'eval', config: {} },
        { kind: 'eval', config: {} },
      ],
    });
    expect(await db.prisma.run.count({ where: { idempotencyKey: null } })).toBe(3);
  });

  it('deleting a run deletes its metrics and checkpoints', async () => {
    const other = (await db.prisma.run.create({ data: { kind: 'train', config: {} } })).id;
    for (const id of [runId, other]) {
      await db.prisma.metricPoint.create({
        data: { runId: id, name: 'val/acc', step: 1, value: 0.5, wallTime: new Date() },
      });
      await db.prisma.checkpoint.create({
        data: {
          runId: id,
          step: 1,
          epoch: 0,
          location: `runs/${id}/step-1`,
          bytes: 10n,
          sha256: 'b',
        },
      });
    }
    await db.prisma.run.delete({ where: { id: runId } });
    expect(await db.prisma.metricPoint.count({ where: { runId } })).toBe(0);
    expect(await db.prisma.checkpoint.count({ where: { runId } })).toBe(0);
    expect(await db.prisma.metricPoint.count({ where: { runId: other } })).toBe(1);
    expect(await db.prisma.checkpoint.count({ where: { runId: other } })).toBe(1);
  });

  it('stores metric values as exact doubles, NaN and infinities included, and checkpoint sizes beyond 2^53', async () => {
    const finite = [0.1 + 0.2, 1 / 3, 5e-324, -0.000123456789012345, 1e300];
    await db.prisma.metricPoint.createMany({
      data: finite.map((value, step) => ({ runId, name: 'x', step, value, wallTime: new Date() })),
    });
    // A diverged loss is NaN or infinite: it must be stored as such, not rejected.
    const nonFinite = [NaN, Infinity, -Infinity];
    for (const [i, value] of nonFinite.entries()) {
      await db.prisma.metricPoint.create({
        data: { runId, name: 'x', step: finite.length + i, value, wallTime: new Date() },
      });
    }
    const rows = await db.prisma.metricPoint.findMany({
      where: { runId },
      orderBy: { step: 'asc' },
    });
    expect(rows.map((r) => r.value)).toEqual([...finite, ...nonFinite]);
    expect(rows[0]?.value).toBe(0.30000000000000004);

    const bytes = 2n ** 60n + 7n;
    await db.prisma.checkpoint.create({
      data: { runId, step: 1, epoch: 0, location: 'l', bytes, sha256: 's' },
    });
    expect((await db.prisma.checkpoint.findFirstOrThrow({ where: { runId } })).bytes).toBe(bytes);
  });

  it('createMany stores every non-finite value of a batch as the first one (Prisma 7.10 bug): write them one by one', async () => {
    // If this starts failing, Prisma fixed it and writers may batch NaN/Infinity again.
    await db.prisma.metricPoint.createMany({
      data: [NaN, Infinity, -Infinity, 2].map((value, step) => ({
        runId,
        name: 'x',
        step,
        value,
        wallTime: new Date(),
      })),
    });
    const rows = await db.prisma.metricPoint.findMany({
      where: { runId },
      orderBy: { step: 'asc' },
    });
    expect(rows.map((r) => r.value)).toEqual([NaN, NaN, NaN, 2]);
  });

  it('round-trips JSON columns and keeps enum values', async () => {
    const progress = { step: 5, totalSteps: 100, epoch: 0, loss: 2.25, nested: { ok: true } };
    await db.prisma.run.update({
      where: { id: runId },
      data: { progress, status: 'running', error: Prisma.DbNull },
    });
    const updated = await db.prisma.run.findUniqueOrThrow({ where: { id: runId } });
    expect(updated.progress).toEqual(progress);
    expect(updated.status).toBe('running');
    expect(updated.error).toBeNull();
  });
});
