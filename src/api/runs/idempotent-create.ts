/**
 * Creating a run under an Idempotency-Key: a repeated request gets the run the first one
 * created, also when the two race (the unique key refuses the second row).
 */
import { Prisma, type PrismaClient, type Run } from '../../db/index.js';

/** The run, and whether an earlier request with the same key created it. */
export interface Submitted {
  run: Run;
  replayed: boolean;
}

/** Runs `create` unless a run with `key` exists; without a key, always runs it. */
export async function idempotentCreate(
  prisma: PrismaClient,
  key: string | undefined,
  create: () => Promise<Run>,
): Promise<Submitted> {
  const existing = (): Promise<Run | null> =>
    key ? prisma.run.findUnique({ where: { idempotencyKey: key } }) : Promise.resolve(null);
  const first = await existing();
  if (first) return { run: first, replayed: true };
  try {
    return { run: await create(), replayed: false };
  } catch (error) {
    // Two requests with one key raced; the other one created the run.
    if (key && error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') {
      const other = await existing();
      if (other) return { run: other, replayed: true };
    }
    throw error;
  }
}
