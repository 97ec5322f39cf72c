/**
 * The postgres artifact store when the server drops the connection of a write in progress (a
 * restart, a failover): the write fails and can be made again, and the process lives on. A
 * connection lost while the store held it out of its pool used to surface as an unhandled
 * 'error' event that ended the process (seen as a worker crash in test/faults).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactStore } from '../../src/artifacts/artifact-store.js';
import { createPostgresArtifactStore } from '../../src/artifacts/postgres-artifact-store.js';
import { createTestDatabase } from '../helpers/database.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let store: ArtifactStore;
let blocker: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase('artifact_conn_loss');
  store = createPostgresArtifactStore(db.url);
  blocker = new pg.Client({ connectionString: db.url });
  await blocker.connect();
});
afterAll(async () => {
  await blocker?.end();
  await store?.close();
  await db?.drop();
});

const bytes = (text: string) => [Buffer.from(text)];

describe('postgres artifact store', () => {
  it('fails a write whose connection the server ends, and takes the next one', async () => {
    await store.put('a/file.bin', bytes('first'));
    // Another session holds the stored file's row, so the write's transaction waits on it.
    await blocker.query('BEGIN');
    await blocker.query(`SELECT 1 FROM "Artifact" WHERE key = 'a/file.bin' FOR UPDATE`);
    const writing = store.put('a/file.bin', bytes('second'));
    const outcome = writing.then(
      () => 'stored',
      (error: Error) => error.message,
    );
    let waiting: number | undefined;
    for (let i = 0; i < 100 && waiting === undefined; i++) {
      const { rows } = await blocker.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
      );
      waiting = rows[0]?.pid;
      if (waiting === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(waiting).toBeDefined();
    await blocker.query('SELECT pg_terminate_backend($1)', [waiting]);
    await blocker.query('ROLLBACK');
    expect(await outcome).toMatch(/terminat/i);
    await store.put('a/file.bin', bytes('third'));
    const read: Buffer[] = [];
    for await (const chunk of await store.get('a/file.bin')) read.push(chunk as Buffer);
    expect(Buffer.concat(read).toString()).toBe('third');
  });
});
