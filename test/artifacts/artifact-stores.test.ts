/**
 * The artifact-store contract, run against every backend on real parts: PostgreSQL (a database
 * of its own), a directory, and an S3-compatible server (s3rver, in this process).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArtifactChecksumError,
  ArtifactNotFoundError,
  type ArtifactStore,
} from '../../src/artifacts/artifact-store.js';
import { createFsArtifactStore } from '../../src/artifacts/fs-artifact-store.js';
import {
  createPostgresArtifactStore,
  POSTGRES_CHUNK_BYTES,
} from '../../src/artifacts/postgres-artifact-store.js';
import { createS3ArtifactStore } from '../../src/artifacts/s3-artifact-store.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

let db: TestDatabase;
let root: string;
let s3server: S3rver;
let s3endpoint: string;
const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

beforeAll(async () => {
  db = await createTestDatabase('artifact_stores');
  root = await mkdtemp(path.join(os.tmpdir(), 'gq-artifacts-'));
  s3server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: path.join(root, 's3rver'),
    configureBuckets: [{ name: 'artifacts', configs: [] }],
  });
  const { port } = await s3server.run();
  s3endpoint = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await s3server?.close();
  await db?.drop();
  await rm(root, { recursive: true, force: true });
});

/** `bytes` of a fixed pattern, fed in odd-sized pieces as a file stream would be. */
function pattern(bytes: number, seed = 1): Uint8Array {
  const out = new Uint8Array(bytes);
  let x = seed;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function* pieces(data: Uint8Array, size = 300_007): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size);
}

async function readAll(store: ArtifactStore, key: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of await store.get(key)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

interface Backend {
  name: string;
  make(): ArtifactStore;
  /** Changes one stored byte of `key` behind the store's back. */
  corrupt(key: string): Promise<void>;
}

const backends: Backend[] = [
  {
    name: 'postgres',
    make: () => createPostgresArtifactStore(db.url),
    async corrupt(key) {
      await db.prisma.$executeRaw`
        UPDATE "ArtifactChunk" SET data = set_byte(data, 10, (get_byte(data, 10) + 1) % 256)
        WHERE "index" = 1 AND "artifactId" = (SELECT id FROM "Artifact" WHERE key = ${key})`;
    },
  },
  {
    name: 'fs',
    make: () => createFsArtifactStore(path.join(root, 'fs')),
    async corrupt(key) {
      const file = path.join(root, 'fs', key);
      const data = await readFile(file);
      data[1_500_000] = (data[1_500_000] ?? 0) ^ 1;
      await writeFile(file, data);
    },
  },
  {
    name: 's3 (s3rver)',
    make: () =>
      createS3ArtifactStore({
        bucket: 'artifacts',
        prefix: 'gq/',
        region: 'us-east-1',
        endpoint: s3endpoint,
        forcePathStyle: true,
        credentials: S3_CREDENTIALS,
      }),
    async corrupt(key) {
      // Replace the object's bytes, leaving the checksum sidecar as it was.
      const client = new S3Client({
        region: 'us-east-1',
        endpoint: s3endpoint,
        forcePathStyle: true,
        credentials: S3_CREDENTIALS,
      });
      const data = pattern(3_500_000);
      data[1_500_000] = (data[1_500_000] ?? 0) ^ 1;
      await client.send(
        new PutObjectCommand({ Bucket: 'artifacts', Key: `gq/${key}`, Body: data }),
      );
      client.destroy();
    },
  },
];

describe.each(backends)('the $name artifact store', (backend) => {
  it('streams a 3.5 MB file in and out unchanged, with its size and SHA-256', async () => {
    const store = backend.make();
    const data = pattern(3_500_000);
    const info = await store.put('runs/r1/step-4/weights.bin', pieces(data));
    expect(info).toEqual({
      key: 'runs/r1/step-4/weights.bin',
      bytes: data.byteLength,
      sha256: sha256(data),
    });
    expect(await store.checksum('runs/r1/step-4/weights.bin')).toEqual(info);
    expect((await readAll(store, 'runs/r1/step-4/weights.bin')).equals(data)).toBe(true);
    await store.close();
  });

  it('replaces a file in place, lists and deletes by prefix without touching a sibling prefix', async () => {
    const store = backend.make();
    await store.put('runs/r2/step-1/a.json', pieces(pattern(10, 1)));
    await store.put('runs/r2/step-1/a.json', pieces(pattern(20, 2)));
    await store.put('runs/r2/step-2/b.bin', pieces(pattern(30, 3)));
    await store.put('runs/r2-other/step-1/c.bin', pieces(pattern(40, 4)));
    expect((await readAll(store, 'runs/r2/step-1/a.json')).equals(pattern(20, 2))).toBe(true);
    expect((await store.list('runs/r2')).map((i) => [i.key, i.bytes])).toEqual([
      ['runs/r2/step-1/a.json', 20],
      ['runs/r2/step-2/b.bin', 30],
    ]);
    expect(await store.delete('runs/r2/step-1')).toBe(1);
    expect((await store.list('runs/r2')).map((i) => i.key)).toEqual(['runs/r2/step-2/b.bin']);
    expect(await store.delete('runs/r2')).toBe(1);
    expect(await store.list('runs/r2')).toEqual([]);
    expect(await store.checksum('runs/r2/step-2/b.bin')).toBeUndefined();
    await expect(store.get('runs/r2/step-2/b.bin')).rejects.toBeInstanceOf(ArtifactNotFoundError);
    expect((await store.list('runs/r2-other')).map((i) => i.key)).toEqual([
      'runs/r2-other/step-1/c.bin',
    ]);
    await store.close();
  });

  it('refuses bytes changed behind its back: the read fails with ArtifactChecksumError', async () => {
    const store = backend.make();
    const key = 'runs/r3/step-8/weights.bin';
    await store.put(key, pieces(pattern(3_500_000)));
    await backend.corrupt(key);
    await expect(readAll(store, key)).rejects.toBeInstanceOf(ArtifactChecksumError);
    await store.close();
  });

  it('refuses keys that could escape its root', async () => {
    const store = backend.make();
    for (const key of ['../x', '/abs', 'a//b', 'a/../b', 'x.sha256']) {
      await expect(store.put(key, pieces(pattern(1)))).rejects.toThrow(/invalid artifact key/);
    }
    await store.close();
  });
});

describe('the postgres artifact store', () => {
  it('stores a file as 1 MiB chunk rows, and a failed upload leaves the old file and no rows behind', async () => {
    const store = createPostgresArtifactStore(db.url);
    const key = 'runs/r4/step-1/weights.bin';
    await store.put(key, pieces(pattern(3_500_000)));
    const chunks = await db.prisma.$queryRaw<Array<{ n: bigint; largest: number }>>`
      SELECT count(*) AS n, max(length(c.data)) AS largest FROM "ArtifactChunk" c
      JOIN "Artifact" a ON a.id = c."artifactId" WHERE a.key = ${key}`;
    expect(Number(chunks[0]?.n)).toBe(Math.ceil(3_500_000 / POSTGRES_CHUNK_BYTES));
    expect(chunks[0]?.largest).toBe(POSTGRES_CHUNK_BYTES);

    async function* failing(): AsyncGenerator<Uint8Array> {
      yield pattern(2_000_000, 9);
      throw new Error('disk read failed');
    }
    await expect(store.put(key, failing())).rejects.toThrow('disk read failed');
    expect((await readAll(store, key)).equals(pattern(3_500_000))).toBe(true);
    expect(await db.prisma.artifact.count({ where: { key: null } })).toBe(0);
    await store.close();
  });
});

describe('the fs artifact store', () => {
  it('writes through temporary names: a failed upload leaves the old file and no temporary files', async () => {
    const dir = path.join(root, 'fs-atomic');
    const store = createFsArtifactStore(dir);
    await store.put('runs/r5/a.bin', pieces(pattern(1000)));
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield pattern(500, 2);
      throw new Error('source broke');
    }
    await expect(store.put('runs/r5/a.bin', failing())).rejects.toThrow('source broke');
    expect((await readAll(store, 'runs/r5/a.bin')).equals(pattern(1000))).toBe(true);
    expect((await readdir(path.join(dir, 'runs', 'r5'))).sort()).toEqual(['a.bin', 'a.bin.sha256']);
  });
});
