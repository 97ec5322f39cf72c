/**
 * npm run keys:create -- --name <name> [--scopes read,submit,admin]
 *
 * Creates an API key and prints it once on stdout (only its SHA-256 is stored). Default scopes:
 * read,submit.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { loadConfig } from '../../config.js';
import { createPrismaClient } from '../../db/index.js';
import { ApiKeyNameTakenError, createApiKeyStore } from './api-key-store.js';
import { scopeSchema } from './scopes.js';

function fail(message: string): never {
  process.stderr.write(`keys:create: ${message}\n`);
  process.exit(1);
}

const argsSchema = z.object({
  name: z
    .string({ error: '--name <name> is required' })
    .min(1)
    .max(100)
    .regex(/^[\w.@-]+$/, 'letters, digits and _ . @ - only'),
  scopes: z
    .string()
    .default('read,submit')
    .transform((s) => s.split(',').map((x) => x.trim()))
    .pipe(z.array(scopeSchema).min(1)),
});

let values: Record<string, unknown>;
try {
  values = parseArgs({
    options: { name: { type: 'string' }, scopes: { type: 'string' } },
    strict: true,
  }).values;
} catch (error) {
  fail((error as Error).message);
}
const parsed = argsSchema.safeParse(values);
if (!parsed.success)
  fail(parsed.error.issues.map((i) => `--${String(i.path[0])}: ${i.message}`).join('; '));

const prisma = createPrismaClient(loadConfig().DATABASE_URL);
try {
  const { id, key } = await createApiKeyStore(prisma).create(parsed.data);
  process.stderr.write(
    `created key '${parsed.data.name}' (id ${id}, scopes ${parsed.data.scopes.join(',')}).\n` +
      'It is shown once, below; store it now.\n',
  );
  process.stdout.write(`${key}\n`);
} catch (error) {
  fail(error instanceof ApiKeyNameTakenError ? error.message : (error as Error).message);
} finally {
  await prisma.$disconnect();
}
