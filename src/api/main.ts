/** API process: `npm run start:api`. */
import { Queue } from 'bullmq';
import { loadConfig } from '../config.js';
import { createPrismaClient } from '../db/index.js';
import { TRAINING_QUEUE } from '../jobs.js';
import { createLogger } from '../logger.js';
import { createApp } from './app.js';

const config = loadConfig();
const logger = createLogger(config, 'api');
const prisma = createPrismaClient(config.DATABASE_URL);
const queue = new Queue(TRAINING_QUEUE, {
  connection: { url: config.REDIS_URL },
  prefix: config.QUEUE_PREFIX,
});
const server = createApp({ prisma, queue, logger }).listen(config.PORT, () => {
  logger.info({ port: config.PORT }, 'API listening');
});

async function shutdown(signal: string): Promise<void> {
  logger.info({ signal }, 'shutting down');
  server.close();
  await Promise.allSettled([queue.close(), prisma.$disconnect()]);
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
