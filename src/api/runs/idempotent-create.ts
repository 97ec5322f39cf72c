/**
 * Creating a run under an Idempotency-Key: a repeated request gets the run the first one
 * created, also when the two race (the unique key refuses the second row). The run keeps a hash
 * of the request that created it, so a request that reuses the key with another body (another
 * run, perhaps of another kind) is refused with 422 rather than answered with the first run.
 */
import { createHash } from 'node:crypto';
import { Prisma, type PrismaClient, type Run } from '../../db/index.js';
import { UnusableInputError } from '../../runs/run-errors.js';

/** The run, and whether an earlier request with the same key created it. */
export interface Submitted {
  run: Run;
  replayed: boolean;
}

/** JSON with object keys sorted at every level: one text for one value, whatever the order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The hash of a request body as validated (defaults filled in), so the same request sent again
 * with its keys in another order or a default spelled out is still the same request.
 */
export function requestHash(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function keyReused(key: string): UnusableInputError {
  const message = `Idempotency-Key '${key}' was used for a request with another body; use a new key for another run`;
  return new UnusableInputError('header.idempotency-key', message);
}

/**
 * Runs `create(hash)` unless a run with `key` exists; without a key, always runs it. A run made
 * under the key by another body is refused (UnusableInputError: 422). Runs created before hashes
 * were kept (no hash) are answered as before.
 */
export async function idempotentCreate(
  prisma: PrismaClient,
  key: string | undefined,
  body: unknown,
  create: (hash: string | null) => Promise<Run>,
): Promise<Submitted> {
  const hash = key ? requestHash(body) : null;
  const replay = (run: Run): Submitted => {
    if (run.idempotencyHash !== null && run.idempotencyHash !== hash) throw keyReused(key!);
    return { run, replayed: true };
  };
  const existing = (): Promise<Run | null> =>
    key ? prisma.run.findUnique({ where: { idempotencyKey: key } }) : Promise.resolve(null);
  const first = await existing();
  if (first) return replay(first);
  try {
    return { run: await create(hash), replayed: false };
  } catch (error) {
    // Two requests with one key raced; the other one created the run.
    if (key && error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
      const other = await existing();
      if (other) return replay(other);
    }
    throw error;
  }
}
