/**
 * npm run db:migrate
 *
 * Applies the committed migrations in prisma/migrations to DATABASE_URL (see .env.example).
 * Safe to run on every deploy: a database that is up to date is left alone. Exits 1 with a
 * one-line reason when Postgres cannot be reached or a migration fails.
 */
import { pino } from 'pino';
import { loadConfig } from '../config.js';
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
} catch (error) {
  fail((error as Error).message);
}
