/**
 * npm run db:migration:create -- --name <what_changed>
 *
 * Development only: after editing prisma/schema.prisma, writes the next migration
 * (prisma/migrations/<timestamp>_<name>/migration.sql) for review and commit. It works on
 * temporary databases on the server of DATABASE_URL (its role needs CREATEDB) and applies
 * nothing: run `npm run db:migrate` afterwards.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../config.js';
import { generateMigration } from './migration-create.js';
import { findPrismaDir, writeMigration } from './migration-files.js';

function fail(message: string): never {
  process.stderr.write(`db:migration:create: ${message}\n`);
  process.exit(1);
}

try {
  const { values } = parseArgs({ options: { name: { type: 'string' } } });
  if (values.name === undefined) fail('--name <what_changed> is required');
  const config = loadConfig();
  const log = pino({ name: 'db:migration:create', level: config.LOG_LEVEL });
  const migration = await generateMigration(config.DATABASE_URL, { name: values.name, log });
  if (migration === null) {
    log.info('prisma/schema.prisma and the committed migrations agree: nothing to create');
  } else {
    const dir = await writeMigration(path.join(findPrismaDir(), 'migrations'), migration);
    log.info({ dir: path.relative(process.cwd(), dir) }, 'migration written: review it, commit it');
  }
} catch (error) {
  fail((error as Error).message);
}
