/**
 * The `fs` artifact store: a directory every worker and API replica mounts (NFS, a compose
 * volume). Each file `<root>/<key>` has a sidecar `<key>.sha256` holding `<sha256> <bytes>`.
 *
 * Writes are atomic: data and sidecar go to temporary names, are fsynced, and are renamed into
 * place (sidecar first, then data), and the directory is fsynced. A crash between the two
 * renames leaves a sidecar that does not match the old data: the read refuses it rather than
 * returning bytes nobody can vouch for.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDirectory, writeFileSynced } from '../files/durable-files.js';
import {
  ArtifactChecksumError,
  ArtifactNotFoundError,
  checkKey,
  type ArtifactInfo,
  type ArtifactStore,
} from './artifact-store.js';
import { verifiedStream } from './verified-stream.js';

const SIDECAR = '.sha256';

function isErrno(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

export function createFsArtifactStore(rootDir: string): ArtifactStore {
  const root = path.resolve(rootDir);
  const fileOf = (key: string) => path.join(root, ...checkKey(key).split('/'));

  async function readSidecar(key: string): Promise<ArtifactInfo | undefined> {
    let text: string;
    try {
      text = await readFile(`${fileOf(key)}${SIDECAR}`, 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
    const [sha256, bytes] = text.trim().split(' ');
    if (!sha256 || !/^[0-9a-f]{64}$/.test(sha256) || !/^\d+$/.test(bytes ?? '')) {
      throw new ArtifactChecksumError(key, 'its checksum file is unreadable');
    }
    return { key, bytes: Number(bytes), sha256 };
  }

  async function walk(dir: string, rel: string, out: string[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ENOTDIR')) return;
      throw error;
    }
    for (const entry of entries) {
      const key = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(path.join(dir, entry.name), key, out);
      else if (entry.name.endsWith(SIDECAR) && !entry.name.includes('.tmp-')) {
        out.push(key.slice(0, -SIDECAR.length));
      }
    }
  }

  return {
    kind: 'fs',

    async put(key, body) {
      const file = fileOf(key);
      const dir = path.dirname(file);
      await mkdir(dir, { recursive: true });
      const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
      try {
        const { bytes, sha256 } = await writeFileSynced(tmp, body);
        await writeFileSynced(`${tmp}${SIDECAR}`, [Buffer.from(`${sha256} ${bytes}\n`)]);
        await rename(`${tmp}${SIDECAR}`, `${file}${SIDECAR}`);
        await rename(tmp, file);
        await fsyncDirectory(dir);
        return { key, bytes, sha256 };
      } finally {
        await rm(tmp, { force: true });
        await rm(`${tmp}${SIDECAR}`, { force: true });
      }
    },

    async get(key) {
      const expected = await readSidecar(key);
      if (!expected) throw new ArtifactNotFoundError(key);
      // Opened before returning, so a missing data file is ArtifactNotFoundError, not a stream error.
      const source = createReadStream(fileOf(key));
      await new Promise<void>((resolve, reject) => {
        source.once('open', () => resolve());
        source.once('error', (error) =>
          reject(isErrno(error, 'ENOENT') ? new ArtifactNotFoundError(key) : error),
        );
      });
      return verifiedStream(key, source, expected);
    },

    async list(prefix) {
      const keys: string[] = [];
      const base = fileOf(prefix);
      const single = await readSidecar(prefix);
      if (single) keys.push(prefix);
      await walk(base, prefix, keys);
      keys.sort();
      const infos = await Promise.all(keys.map((key) => readSidecar(key)));
      return infos.filter((i): i is ArtifactInfo => i !== undefined);
    },

    async delete(prefix) {
      const files = await this.list(prefix);
      const base = fileOf(prefix);
      await rm(`${base}${SIDECAR}`, { force: true });
      await rm(base, { recursive: true, force: true });
      return files.length;
    },

    async checksum(key) {
      const info = await readSidecar(key);
      if (!info) return undefined;
      try {
        await stat(fileOf(key));
      } catch (error) {
        if (isErrno(error, 'ENOENT')) return undefined;
        throw error;
      }
      return info;
    },

    async close() {},
  };
}
