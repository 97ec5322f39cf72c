/**
 * External runs: trained elsewhere (a PyTorch script, a notebook), which logs its points and
 * finishes the run through the API. Running from the moment they are created, never queued.
 */
import type { Prisma, PrismaClient } from '../../db/index.js';
import { RunConflictError } from '../../runs/run-errors.js';
import type { RunLifecycle } from '../../runs/run-lifecycle.js';
import type { RunListing } from './run-listing.service.js';
import { idempotentCreate, type Submitted } from './idempotent-create.js';
import type { CreateExternalRunBody, FinishRunBody } from './runs.schemas.js';

export function createExternalRuns(deps: {
  prisma: PrismaClient;
  lifecycle: RunLifecycle;
  listing: Pick<RunListing, 'findRun'>;
}) {
  const { prisma, lifecycle, listing } = deps;
  return {
    async submitExternalRun(
      body: CreateExternalRunBody,
      idempotencyKey?: string,
    ): Promise<Submitted> {
      return idempotentCreate(prisma, idempotencyKey, body, (hash) =>
        lifecycle.startExternal({
          name: body.name,
          config: body.config as Prisma.InputJsonValue,
          idempotencyKey: idempotencyKey ?? null,
          idempotencyHash: hash,
        }),
      );
    },

    /** Ends a running external run with the status its trainer reports. */
    async finishExternalRun(id: string, body: FinishRunBody) {
      const run = await listing.findRun(id);
      if (run.kind !== 'external')
        throw new RunConflictError(`run ${id} is a ${run.kind} run; its worker finishes it`);
      const error = body.error
        ? { name: 'ExternalRunFailed', message: body.error, attempt: 1, unrecoverable: true }
        : undefined;
      const finished = await lifecycle.finishExternal(id, body.status, error);
      if (!finished) throw new RunConflictError(`run ${id} is ${run.status}, not running`);
      return finished;
    },
  };
}
