/**
 * The role the API and workers connect as in compose: it reads and writes the tables and can
 * change nothing else. Roles are per server, so each test names its own and drops it after.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { AppRoleError, ensureAppRole } from '../../src/db/app-role.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const serverUrl = loadConfig().DATABASE_URL;
const role = `gq_test_app_${randomBytes(4).toString('hex')}`;
let db: TestDatabase;

/** Runs `sql` on the test database as `user`. */
async function as(user: string, sql: string): Promise<pg.QueryResult> {
  const url = new URL(db.url);
  url.username = user;
  url.password = 'app-password-1';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

async function asOwner(sql: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  db = await createTestDatabase('app_role');
});
afterAll(async () => {
  // The grants live in the test database: dropping it first leaves the role owning nothing.
  await db?.drop();
  await asOwner(`DROP ROLE IF EXISTS ${role}`);
});

describe('ensureAppRole', () => {
  it('makes a login role that reads and writes every table but changes no schema and is no superuser', async () => {
    await ensureAppRole(db.url, role, 'app-password-1');
    const { rows } = await asOwner(
      'SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolpassword IS NOT NULL AS haspw FROM pg_authid WHERE rolname = $1',
      [role],
    );
    expect(rows).toEqual([
      { rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolcanlogin: true, haspw: true },
    ]);

    await as(role, `INSERT INTO "Worker" (id, host) VALUES ('w-app-role', 'h')`);
    expect((await as(role, `SELECT host FROM "Worker" WHERE id = 'w-app-role'`)).rows).toEqual([
      { host: 'h' },
    ]);
    await as(role, `UPDATE "Worker" SET host = 'h2' WHERE id = 'w-app-role'`);
    await as(role, `DELETE FROM "Worker" WHERE id = 'w-app-role'`);

    await expect(as(role, 'CREATE TABLE app_role_probe (id int)')).rejects.toThrow(
      /permission denied/,
    );
    await expect(as(role, 'DROP TABLE "Run"')).rejects.toThrow(/must be owner/);
    await expect(as(role, 'TRUNCATE "Run"')).rejects.toThrow(/permission denied/);
    await expect(as(role, `ALTER ROLE ${role} SUPERUSER`)).rejects.toThrow(/must be superuser/);
  });

  it('is idempotent and follows tables the owner creates later', async () => {
    await ensureAppRole(db.url, role, 'app-password-1');
    const owner = new pg.Client({ connectionString: db.url });
    await owner.connect();
    try {
      await owner.query('CREATE TABLE later_table (id serial PRIMARY KEY, note text)');
    } finally {
      await owner.end();
    }
    await as(role, `INSERT INTO later_table (note) VALUES ('written by the app role')`);
    expect((await as(role, 'SELECT note FROM later_table')).rows).toEqual([
      { note: 'written by the app role' },
    ]);
  });

  it('refuses the migrating role itself, an existing superuser and a name that needs quoting', async () => {
    const owner = new URL(serverUrl).username || 'postgres';
    await expect(ensureAppRole(db.url, owner, 'pw')).rejects.toThrow(AppRoleError);
    await expect(ensureAppRole(db.url, owner, 'pw')).rejects.toThrow(/is the role migrating/);
    const superRole = `${role}_su`;
    await asOwner(`CREATE ROLE ${superRole} SUPERUSER`);
    try {
      await expect(ensureAppRole(db.url, superRole, 'pw')).rejects.toThrow(/is a superuser/);
      const { rows } = await asOwner('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [
        superRole,
      ]);
      expect(rows).toEqual([{ rolsuper: true }]);
    } finally {
      await asOwner(`DROP ROLE ${superRole}`);
    }
    await expect(ensureAppRole(db.url, 'Robert"); DROP', 'pw')).rejects.toThrow(/must match/);
  });
});
