/**
 * The `s3` artifact store: any S3-compatible object store (AWS S3, MinIO with path-style URLs,
 * Ceph). Objects are `<S3_PREFIX><key>`; next to each, `<key>.sha256` holds `<sha256> <bytes>`
 * measured while uploading. The sidecar is written after the data and is the commit mark: a
 * file without one does not exist, and a read checks the data against it.
 *
 * Uploads are multipart through `@aws-sdk/lib-storage` (parts of 8 MiB, two in flight), so a
 * large checkpoint never sits in memory whole.
 */
import { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  ArtifactChecksumError,
  ArtifactNotFoundError,
  checkKey,
  type ArtifactInfo,
  type ArtifactStore,
} from './artifact-store.js';
import { measure, verifiedStream } from './verified-stream.js';

const SIDECAR = '.sha256';
const PART_BYTES = 8 * 1024 * 1024;

export interface S3ArtifactStoreOptions {
  bucket: string;
  /** Prepended to every key, e.g. `googlenet-queue/`. */
  prefix?: string;
  region: string;
  /** An S3-compatible endpoint; unset for AWS. */
  endpoint?: string;
  /** `endpoint/bucket/key` URLs, which MinIO and s3rver need. */
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

export function createS3ArtifactStore(options: S3ArtifactStoreOptions): ArtifactStore {
  const config: S3ClientConfig = {
    region: options.region,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.forcePathStyle ? { forcePathStyle: true } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
  };
  const client = new S3Client(config);
  const Bucket = options.bucket;
  const base = options.prefix ?? '';
  const objectKey = (key: string) => `${base}${checkKey(key)}`;

  async function upload(Key: string, Body: Readable | Uint8Array): Promise<void> {
    const run = new Upload({
      client,
      params: { Bucket, Key, Body },
      partSize: PART_BYTES,
      queueSize: 2,
      leavePartsOnError: false,
    });
    await run.done();
  }

  async function readSidecar(key: string): Promise<ArtifactInfo | undefined> {
    let text: string;
    try {
      const out = await client.send(
        new GetObjectCommand({ Bucket, Key: `${objectKey(key)}${SIDECAR}` }),
      );
      text = (await out.Body?.transformToString('utf8')) ?? '';
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const [sha256, bytes] = text.trim().split(' ');
    if (!sha256 || !/^[0-9a-f]{64}$/.test(sha256) || !/^\d+$/.test(bytes ?? '')) {
      throw new ArtifactChecksumError(key, 'its checksum object is unreadable');
    }
    return { key, bytes: Number(bytes), sha256 };
  }

  async function keysUnder(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket, Prefix: objectKey(prefix), ContinuationToken }),
      );
      for (const object of page.Contents ?? []) {
        const key = object.Key?.slice(base.length);
        if (key && (key === prefix || key.startsWith(`${prefix}`))) keys.push(key);
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
    // `prefix` itself and what lies under `prefix/`, not `prefix-other`.
    return keys.filter((k) => {
      const rest = k.slice(prefix.length);
      return rest === '' || rest === SIDECAR || rest.startsWith('/');
    });
  }

  return {
    kind: 's3',

    async put(key, body) {
      const measured = measure(body);
      await upload(objectKey(key), Readable.from(measured.chunks));
      const info = { key, bytes: measured.bytes(), sha256: measured.sha256() };
      await upload(`${objectKey(key)}${SIDECAR}`, Buffer.from(`${info.sha256} ${info.bytes}\n`));
      return info;
    },

    async get(key) {
      const expected = await readSidecar(key);
      if (!expected) throw new ArtifactNotFoundError(key);
      let body: Readable;
      try {
        const out = await client.send(new GetObjectCommand({ Bucket, Key: objectKey(key) }));
        body = out.Body as Readable;
      } catch (error) {
        if (isNotFound(error)) throw new ArtifactNotFoundError(key);
        throw error;
      }
      return verifiedStream(key, body, expected);
    },

    async list(prefix) {
      const sidecars = (await keysUnder(prefix)).filter((k) => k.endsWith(SIDECAR));
      const infos = await Promise.all(
        sidecars.sort().map((k) => readSidecar(k.slice(0, -SIDECAR.length))),
      );
      return infos.filter((i): i is ArtifactInfo => i !== undefined);
    },

    async delete(prefix) {
      const keys = await keysUnder(prefix);
      // Sidecars first: a half-finished delete leaves data nobody lists, not a listed file
      // whose data is gone.
      keys.sort((a, b) => Number(b.endsWith(SIDECAR)) - Number(a.endsWith(SIDECAR)));
      for (let i = 0; i < keys.length; i += 1000) {
        await client.send(
          new DeleteObjectsCommand({
            Bucket,
            Delete: { Objects: keys.slice(i, i + 1000).map((k) => ({ Key: `${base}${k}` })) },
          }),
        );
      }
      return keys.filter((k) => k.endsWith(SIDECAR)).length;
    },

    async checksum(key) {
      return readSidecar(key);
    },

    async close() {
      client.destroy();
    },
  };
}
