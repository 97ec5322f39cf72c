/**
 * Configuration of the Prisma CLI, which we use for `prisma generate` (npm postinstall),
 * `validate` and `format`.
 *
 * Migrations do not go through the Prisma CLI: its `migrate` and `db` commands run a native
 * schema engine that it downloads on first use, which fails without internet. Use
 * `npm run db:migrate` and `npm run db:migration:create` (src/db/), which drive the WASM build
 * of the same engine and write the same files and `_prisma_migrations` rows.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'prisma/config';

if (process.env.PRISMA_SCHEMA_ENGINE_BINARY === undefined) {
  // generate/validate/format use bundled WASM and only need *some* existing file here to skip
  // the native engine download; this file stands in for it.
  process.env.PRISMA_SCHEMA_ENGINE_BINARY = fileURLToPath(import.meta.url);
  const command = process.argv[2];
  if (command === 'migrate' || command === 'db') {
    throw new Error(
      `\`prisma ${command}\` needs the native schema engine, which this project does not ` +
        'download: use `npm run db:migrate` or `npm run db:migration:create -- --name <name>` ' +
        '(or set PRISMA_SCHEMA_ENGINE_BINARY to a schema-engine binary).',
    );
  }
}

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  // Read directly, not with `env()`, which throws when the variable is unset: `prisma generate`
  // in a fresh `npm ci` must work without a database. The application reads DATABASE_URL
  // through src/config.ts; only the CLI's database commands would use this value.
  datasource: { url: process.env.DATABASE_URL ?? '' },
});
