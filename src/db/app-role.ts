/**
 * The role the API and workers connect as, when they should not connect as the database's
 * owner: it reads and writes every table of the schema, and can change none (no DDL, no
 * superuser, no roles, no databases). `db:migrate` runs as the owner and, given
 * DATABASE_APP_ROLE and DATABASE_APP_PASSWORD, calls this after the migrations, so the grants
 * follow every new table and a changed password takes effect at the next deploy.
 */
import pg from 'pg';
import { APP_ROLE_PATTERN } from '../config.js';

export class AppRoleError extends Error {
  override name = 'AppRoleError';
}

/**
 * Creates `role` if it does not exist, sets its password, and grants it SELECT, INSERT, UPDATE
 * and DELETE on every table and use of every sequence in the schema of `ownerUrl` (its
 * `current_schema()`), now and for tables the owner creates later. Idempotent.
 *
 * Refuses the owner itself and any existing superuser: making those "app roles" would strip
 * them of what they are.
 */
export async function ensureAppRole(
  ownerUrl: string,
  role: string,
  password: string,
): Promise<void> {
  if (!APP_ROLE_PATTERN.test(role)) {
    throw new AppRoleError(`app role name ${JSON.stringify(role)} must match ${APP_ROLE_PATTERN}`);
  }
  if (password.length === 0) throw new AppRoleError(`app role ${role} needs a password`);
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ owner: string; schema: string; database: string }>(
      'SELECT current_user AS owner, current_schema() AS schema, current_database() AS database',
    );
    const { owner, schema, database } = rows[0]!;
    if (role === owner) {
      throw new AppRoleError(`app role ${role} is the role migrating the database; pick another`);
    }
    const existing = await client.query<{ rolsuper: boolean }>(
      'SELECT rolsuper FROM pg_roles WHERE rolname = $1',
      [role],
    );
    if (existing.rows[0]?.rolsuper) {
      throw new AppRoleError(`app role ${role} exists and is a superuser; pick another name`);
    }
    const r = client.escapeIdentifier(role);
    const s = client.escapeIdentifier(schema);
    // Two deploys may race to create the role: the second CREATE fails, so it is caught and
    // the ALTER below sets the same state either way.
    if (existing.rows.length === 0) {
      await client.query(`CREATE ROLE ${r} LOGIN`).catch(async (error: unknown) => {
        const again = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
        if (again.rows.length === 0) throw error;
      });
    }
    // ALTER ROLE takes no bind parameters; escapeLiteral quotes the password for SQL.
    await client.query(
      `ALTER ROLE ${r} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS ` +
        `PASSWORD ${client.escapeLiteral(password)}`,
    );
    await client.query('BEGIN');
    await client.query(`GRANT CONNECT ON DATABASE ${client.escapeIdentifier(database)} TO ${r}`);
    await client.query(`GRANT USAGE ON SCHEMA ${s} TO ${r}`);
    await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${r}`);
    await client.query(`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`);
    await client.query(
      `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${r}`,
    );
    await client.query(
      `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${r}`,
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    await client.end();
  }
}
