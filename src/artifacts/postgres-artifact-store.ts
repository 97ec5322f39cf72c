/**
 * The default artifact store: files kept in PostgreSQL next to the rows that describe them, so
 * any worker that reaches the database can resume any run and one backup holds everything.
 *
 * A file is an Artifact row plus ArtifactChunk rows of {@link POSTGRES_CHUNK_BYTES} each: a
 * 60 MB checkpoint is 60 modest rows, streamed one at a time in both directions. An upload
 * writes its chunks under a row without a key and takes the key in one transaction at the end
 * (dropping the file it replaces), so readers never see a partial file. An upload that dies
 * half-way leaves a keyless row; the next upload sweeps such rows once they are an hour old.
 */
import type { PrismaClient } from '../db/index.js';
import {
  ArtifactNotFoundError,
  checkKey,
  type ArtifactInfo,
  type ArtifactStore,
} from './artifact-store.js';
import { measure, rechunk, verifiedStream } from './verified-stream.js';

/** 1 MiB: large enough that per-row overhead is noise, small enough to stay out of the way. */
export const POSTGRES_CHUNK_BYTES = 1024 * 1024;

/** Keyless (abandoned) uploads older than this are deleted. */
const ABANDONED_AFTER_MS = 60 * 60 * 1000;

function info(row: { key: string | null; bytes: bigint; sha256: string }): ArtifactInfo {
  return { key: row.key ?? '', bytes: Number(row.bytes), sha256: row.sha256 };
}

function underPrefix(prefix: string) {
  return { OR: [{ key: prefix }, { key: { startsWith: `${prefix}/` } }] };
}

export function createPostgresArtifactStore(prisma: PrismaClient): ArtifactStore {
  return {
    kind: 'postgres',

    async put(key, body) {
      checkKey(key);
      await prisma.artifact.deleteMany({
        where: { key: null, createdAt: { lt: new Date(Date.now() - ABANDONED_AFTER_MS) } },
      });
      const { id } = await prisma.artifact.create({ data: { bytes: 0n, sha256: '' } });
      try {
        const measured = measure(body);
        let index = 0;
        for await (const data of rechunk(measured.chunks, POSTGRES_CHUNK_BYTES)) {
          await prisma.artifactChunk.create({ data: { artifactId: id, index, data } });
          index += 1;
        }
        const sha256 = measured.sha256();
        const bytes = measured.bytes();
        await prisma.$transaction([
          prisma.artifact.deleteMany({ where: { key } }),
          prisma.artifact.update({ where: { id }, data: { key, bytes: BigInt(bytes), sha256 } }),
        ]);
        return { key, bytes, sha256 };
      } catch (error) {
        await prisma.artifact.deleteMany({ where: { id } }).catch(() => undefined);
        throw error;
      }
    },

    async get(key) {
      checkKey(key);
      const row = await prisma.artifact.findUnique({ where: { key } });
      if (!row) throw new ArtifactNotFoundError(key);
      const fetchChunk = (index: number) =>
        prisma.artifactChunk.findUnique({
          where: { artifactId_index: { artifactId: row.id, index } },
          select: { data: true },
        });
      async function* chunks(): AsyncGenerator<Uint8Array> {
        // One chunk ahead: the next query runs while the consumer handles this chunk.
        let next = fetchChunk(0);
        for (let index = 0; ; index++) {
          const chunk = await next;
          if (!chunk) return;
          next = fetchChunk(index + 1);
          yield chunk.data;
        }
      }
      return verifiedStream(key, chunks(), info(row));
    },

    async list(prefix) {
      const rows = await prisma.artifact.findMany({
        where: underPrefix(prefix),
        orderBy: { key: 'asc' },
        select: { key: true, bytes: true, sha256: true },
      });
      return rows.map(info);
    },

    async delete(prefix) {
      // The chunks go with their Artifact row (ON DELETE CASCADE).
      const { count } = await prisma.artifact.deleteMany({ where: underPrefix(prefix) });
      return count;
    },

    async checksum(key) {
      const row = await prisma.artifact.findUnique({
        where: { key },
        select: { key: true, bytes: true, sha256: true },
      });
      return row ? info(row) : undefined;
    },

    async close() {
      // The Prisma client belongs to the caller.
    },
  };
}
