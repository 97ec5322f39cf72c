/** npm run keys:revoke -- <id or name>: the key stops working at once, on every API replica. */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../config.js';
import { createPrismaClient } from '../../db/index.js';
import { ApiKeyNotFoundError, createApiKeyStore } from './api-key-store.js';

function fail(message: string): never {
  process.stderr.write(`keys:revoke: ${message}\n`);
  process.exit(1);
}

let target: string | undefined;
try {
  target = parseArgs({ allowPositionals: true, options: {} }).positionals[0];
} catch (error) {
  fail((error as Error).message);
}
if (!target) fail('usage: npm run keys:revoke -- <id or name>');

const prisma = createPrismaClient(loadConfig().DATABASE_URL);
try {
  const { id, name } = await createApiKeyStore(prisma).revoke(target);
  process.stdout.write(`revoked key '${name}' (id ${id})\n`);
} catch (error) {
  fail(error instanceof ApiKeyNotFoundError ? error.message : (error as Error).message);
} finally {
  await prisma.$disconnect();
}
