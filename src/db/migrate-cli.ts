/**
 * npm run db:migrate
 *
 * Applies the committed migrations in prisma/migrations to DATABASE_URL (see .env.example).
 * Safe to run on every deploy: a database that is up to date is left alone. Exits 1 with a
 * one-line reason when Postgres cannot be reached or a migration fails.
 *
 * With DATABASE_APP_ROLE and DATABASE_APP_PASSWORD, it then makes sure that role exists with
 * that password and may read and write every table (src/db/app-role.ts): the role the API and
 * workers connect as, while migrate alone connects as the owner.
 */
import { pino } from 'pino';
import { loadConfig } from '../config.js';
import { ensureAppRole } from './app-role.js';
import { migrateDatabase } from './migrate.js';

function fail(message: string): never {
  process.stderr.write(`db:migrate: ${message}\n`);
  process.exit(1);
}

let config;
try {
  config = loadConfig();
} catch (error) {
  fail((error as Error).message);
}

const log = pino({ name: 'db:migrate', level: config.LOG_LEVEL });
try {
  await migrateDatabase(config.DATABASE_URL, { log });
  if (config.DATABASE_APP_ROLE !== undefined && config.DATABASE_APP_PASSWORD !== undefined) {
    await ensureAppRole(
      config.DATABASE_URL,
      config.DATABASE_APP_ROLE,
      config.DATABASE_APP_PASSWORD,
    );
    log.info({ role: config.DATABASE_APP_ROLE }, 'app role ready: reads and writes the tables');
  }
} catch (error) {
  fail((error as Error).message);
}
