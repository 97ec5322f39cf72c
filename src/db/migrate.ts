/**
 * Applies the committed migrations (`prisma/migrations`) to a database, like
 * `prisma migrate deploy`, but through the WASM schema engine so that nothing is downloaded.
 * The `_prisma_migrations` table it keeps is the Prisma CLI's own, so either tool can take over.
 */
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { findPrismaDir, readMigrationList } from './migration-files.js';
import { openSchemaEngine } from './schema-engine.js';

/** The logger methods migration uses; a pino logger fits. */
export type MigrateLogger = Pick<Logger, 'info' | 'debug'>;

export interface MigrateOptions {
  /** Receives one line per applied migration (info) and the engine's own tracing (debug). */
  log?: MigrateLogger;
  /** @defaultValue the project's `prisma/migrations` */
  migrationsDir?: string;
  /** How long to wait for Postgres to accept a connection. @defaultValue 10_000 */
  connectTimeoutMs?: number;
}

export interface MigrateResult {
  /** Migrations applied by this call, oldest first; empty when the database was up to date. */
  applied: string[];
}

/** Postgres did not accept a connection: not running, wrong host/port, or the database is missing. */
export class DatabaseUnreachableError extends Error {
  override name = 'DatabaseUnreachableError';
}

/**
 * Applies every committed migration the database has not seen yet. Idempotent: a second call
 * applies nothing. Fails (and applies nothing more) if a migration was edited after being
 * applied or an earlier one failed, as `prisma migrate deploy` does.
 */
export async function migrateDatabase(
  databaseUrl: string,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const { log } = options;
  const migrationsDir = options.migrationsDir ?? path.join(findPrismaDir(), 'migrations');
  await assertReachable(databaseUrl, options.connectTimeoutMs ?? 10_000);

  const migrationsList = await readMigrationList(migrationsDir);
  const session = await openSchemaEngine(databaseUrl, {
    onEngineLog: (line) => log?.debug({ engine: line }, 'schema engine'),
  });
  try {
    const { appliedMigrationNames } = await session.run((engine) =>
      engine.applyMigrations({
        migrationsList,
        filters: { externalTables: [], externalEnums: [] },
      }),
    );
    for (const name of appliedMigrationNames) log?.info({ migration: name }, 'applied migration');
    log?.info(
      {
        applied: appliedMigrationNames.length,
        committed: migrationsList.migrationDirectories.length,
      },
      appliedMigrationNames.length === 0 ? 'database schema is up to date' : 'database migrated',
    );
    return { applied: appliedMigrationNames };
  } finally {
    await session.close();
  }
}

/**
 * Connects once with a timeout, so that a missing server fails fast with the address in the
 * message rather than inside the engine.
 */
async function assertReachable(databaseUrl: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    connectionTimeoutMillis: timeoutMs,
  });
  try {
    await client.connect();
  } catch (error) {
    throw new DatabaseUnreachableError(
      `cannot connect to PostgreSQL at ${describeServer(databaseUrl)}: ${errorText(error)}`,
      { cause: error },
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** `host:port/database` of a connection string, without user or password. */
function describeServer(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    return `${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

/** pg reports a refused connection to every address of a host as an AggregateError without a message. */
function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return errorText(error.errors[0]);
  if (error instanceof Error) {
    return error.message || String((error as NodeJS.ErrnoException).code ?? error.name);
  }
  return String(error);
}
