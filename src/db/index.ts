/**
 * The database layer: client factory, migrations, and the generated model types.
 *
 * Import from here (`../db/index.js`), not from `./generated/`, which is rebuilt by
 * `prisma generate` (npm postinstall).
 */
export { createPrismaClient, type PrismaClientOptions } from './client.js';
export {
  DatabaseUnreachableError,
  migrateDatabase,
  type MigrateLogger,
  type MigrateOptions,
  type MigrateResult,
} from './migrate.js';
export { PrismaClient, Prisma, RunKind, RunStatus } from './generated/client.js';
export type { ApiKey, Checkpoint, MetricPoint, Run, Worker } from './generated/client.js';
