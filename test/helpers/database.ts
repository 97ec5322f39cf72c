/**
 * A fresh, migrated PostgreSQL database per test file, on the server of DATABASE_URL:
 *
 *   let db: TestDatabase;
 *   beforeAll(async () => { db = await createTestDatabase('run_store'); });
 *   afterAll(async () => { await db?.drop(); });
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config.js';
import { createPrismaClient, migrateDatabase, type PrismaClient } from '../../src/db/index.js';
import { createDatabase, dropDatabase, withDatabase } from '../../src/db/databases.js';

export interface TestDatabase {
  /** Connection string of the new database. */
  url: string;
  /** Its name (`gq_test_<label>_<random>`). */
  name: string;
  /** A client on it; `drop()` disconnects it. */
  prisma: PrismaClient;
  /** Disconnects the client and drops the database (even if other sessions are still open). */
  drop(): Promise<void>;
}

/**
 * Creates `gq_test_<label>_<random>`, applies the committed migrations, and connects to it.
 * `serverUrl` picks another server than DATABASE_URL's (a private one a test restarts).
 */
export async function createTestDatabase(
  label: string,
  serverUrl = loadConfig().DATABASE_URL,
): Promise<TestDatabase> {
  const safeLabel = label
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .slice(0, 30);
  const name = `gq_test_${safeLabel}_${randomBytes(5).toString('hex')}`;
  const url = withDatabase(serverUrl, name);
  await createDatabase(serverUrl, name);
  let prisma: PrismaClient | undefined;
  try {
    await migrateDatabase(url);
    prisma = createPrismaClient(url, { maxConnections: 5 });
  } catch (error) {
    await dropDatabase(serverUrl, name);
    throw error;
  }
  const client = prisma;
  let dropped = false;
  return {
    url,
    name,
    prisma: client,
    async drop() {
      if (dropped) return;
      dropped = true;
      await client.$disconnect();
      await dropDatabase(serverUrl, name);
    },
  };
}
