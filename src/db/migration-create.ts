/**
 * Generates the next migration from prisma/schema.prisma, like `prisma migrate dev --create-only`
 * but through the WASM schema engine. Development only.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createDatabase, dropDatabase, withDatabase } from './databases.js';
import { migrateDatabase, type MigrateLogger } from './migrate.js';
import { findPrismaDir, readMigrationList, type NewMigration } from './migration-files.js';
import { openSchemaEngine } from './schema-engine.js';

export interface GenerateMigrationOptions {
  /** Suffix of the directory name (`<timestamp>_<name>`): letters, digits and `_`. */
  name: string;
  log?: MigrateLogger;
  /** @defaultValue the project's `prisma` folder */
  prismaDir?: string;
}

/**
 * Diffs the committed migrations against the schema and returns the migration that closes the
 * gap, or null when they agree. Writes nothing.
 *
 * The engine needs a database at the latest committed migration to work from, and a shadow
 * database to replay the history on. Both are temporary databases created (and dropped) on the
 * server of `serverUrl`, whose role therefore needs CREATEDB; the database that `serverUrl`
 * names is left untouched.
 */
export async function generateMigration(
  serverUrl: string,
  options: GenerateMigrationOptions,
): Promise<NewMigration | null> {
  if (!/^[A-Za-z0-9_]{1,100}$/.test(options.name)) {
    throw new Error(`migration name must be 1-100 letters, digits or _ (got "${options.name}")`);
  }
  const prismaDir = options.prismaDir ?? findPrismaDir();
  const migrationsDir = path.join(prismaDir, 'migrations');
  const schemaPath = path.join(prismaDir, 'schema.prisma');
  const schema = await readFile(schemaPath, 'utf8');
  const filters = { externalTables: [], externalEnums: [] };

  const scratch = `gq_migration_scratch_${randomBytes(6).toString('hex')}`;
  const scratchUrl = withDatabase(serverUrl, scratch);
  await createDatabase(serverUrl, scratch);
  try {
    await migrateDatabase(scratchUrl, { migrationsDir });
    const migrationsList = await readMigrationList(migrationsDir);
    const session = await openSchemaEngine(scratchUrl, {
      schemaFiles: [[schemaPath, schema]],
      onEngineLog: (line) => options.log?.debug({ engine: line }, 'schema engine'),
    });
    try {
      // devDiagnostic replays the applied migrations on a shadow database and caches the
      // resulting schema; createMigration only reads that cache (in the WASM engine it cannot
      // open a shadow database itself), so it fails unless this runs first.
      const { action } = await session.run((engine) =>
        engine.devDiagnostic({ migrationsList, filters }),
      );
      if (action.tag === 'reset') {
        throw new Error(`the committed migrations do not replay cleanly: ${action.reason}`);
      }
      const created = await session.run((engine) =>
        engine.createMigration({
          draft: false,
          migrationName: options.name,
          migrationsList,
          schema: { files: [{ path: schemaPath, content: schema }] },
          filters,
        }),
      );
      if (created.migrationScript === null) return null;
      return {
        name: created.generatedMigrationName,
        script: created.migrationScript,
        connectorType: created.connectorType,
        extension: created.extension,
      };
    } finally {
      await session.close();
    }
  } finally {
    await dropDatabase(serverUrl, scratch);
  }
}
