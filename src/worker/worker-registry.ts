/**
 * The worker's row in Postgres: registered at start, `lastSeenAt` refreshed by a heartbeat, so
 * `GET /v1/queues` lists the workers that are alive. Its `devices` announce the slots and the
 * memory each job may use there (`jobMemoryBytes`), which the API checks submissions against.
 */
import os from 'node:os';
import type { PrismaClient } from '../db/index.js';
import type { Logger } from '../logger.js';
import { WORKER_HEARTBEAT_MS } from '../queue/worker-liveness.js';

export interface WorkerRegistration {
  id: string;
  stop(): Promise<void>;
}

export async function registerWorker(
  prisma: PrismaClient,
  logger: Logger,
  info: { id: string; backend: string; devices: Record<string, number | string> },
): Promise<WorkerRegistration> {
  const now = new Date();
  await prisma.worker.upsert({
    where: { id: info.id },
    create: {
      id: info.id,
      host: os.hostname(),
      backend: info.backend,
      devices: info.devices,
      startedAt: now,
      lastSeenAt: now,
    },
    update: {
      host: os.hostname(),
      backend: info.backend,
      devices: info.devices,
      startedAt: now,
      lastSeenAt: now,
    },
  });
  const timer = setInterval(() => {
    prisma.worker
      .update({ where: { id: info.id }, data: { lastSeenAt: new Date() } })
      .catch((error: unknown) => logger.warn({ err: error }, 'heartbeat failed'));
  }, WORKER_HEARTBEAT_MS);
  timer.unref();
  return {
    id: info.id,
    stop: async () => {
      clearInterval(timer);
    },
  };
}
