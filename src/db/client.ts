/**
 * The Prisma client, talking to PostgreSQL through node-postgres (Prisma 7 has no built-in
 * driver). Creating one opens nothing: the pool connects on the first query or `$connect()`.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/client.js';

export interface PrismaClientOptions {
  /** Most connections the pool opens. @defaultValue 10 (node-postgres' default) */
  maxConnections?: number;
}

/** A PrismaClient on `databaseUrl`. Call `$disconnect()` when done to close its pool. */
export function createPrismaClient(
  databaseUrl: string,
  options: PrismaClientOptions = {},
): PrismaClient {
  const adapter = new PrismaPg({
    connectionString: databaseUrl,
    ...(options.maxConnections === undefined ? {} : { max: options.maxConnections }),
  });
  return new PrismaClient({ adapter });
}
