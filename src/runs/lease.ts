/**
 * Fencing of a run's writes. Claiming a run gives the attempt a lease token, and every later
 * write of that attempt checks it, so a worker that lost its job to another (a lost lock, a
 * network partition) can no longer change the run.
 */
import type { Prisma, PrismaClient } from '../db/index.js';

/** The right of one attempt to write a run, from `claim` until its final status. */
export interface Lease {
  runId: string;
  token: string;
}

/** The run is no longer this attempt's: another worker claimed it, or it was cancelled. */
export class LeaseLostError extends Error {
  constructor(runId: string) {
    super(`run ${runId} is no longer owned by this attempt`);
    this.name = 'LeaseLostError';
  }
}

/** Updates the run if this attempt still owns it; throws LeaseLostError otherwise. */
export async function fencedUpdate(
  prisma: PrismaClient,
  lease: Lease,
  data: Prisma.RunUpdateManyMutationInput,
): Promise<void> {
  const { count } = await prisma.run.updateMany({
    where: { id: lease.runId, lease: lease.token, status: 'running' },
    data,
  });
  if (count !== 1) throw new LeaseLostError(lease.runId);
}

/**
 * Runs `write` in a transaction that holds a share lock on the run row, after checking the
 * lease: a claim by another worker (an UPDATE of that row) waits until this commits, and this
 * fails if the claim came first.
 */
export async function fencedTransaction<T>(
  prisma: PrismaClient,
  lease: Lease,
  write: (tx: Prisma.TransactionClient) => Promise<T>,
): Promise<T> {
  return prisma.$transaction(async (tx) => {
    const owned = await tx.$queryRaw<unknown[]>`
      SELECT 1 FROM "Run"
      WHERE id = ${lease.runId}::uuid AND lease = ${lease.token} AND status = 'running'
      FOR SHARE`;
    if (owned.length === 0) throw new LeaseLostError(lease.runId);
    return write(tx);
  });
}
