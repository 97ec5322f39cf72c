/**
 * Creating and dropping whole databases on a server (tests, shadow databases, scratch databases
 * for generating migrations). Every statement runs on its own short-lived connection, because
 * CREATE/DROP DATABASE cannot run inside a transaction or against the database being dropped.
 */
import pg from 'pg';

/** `databaseUrl` with its database name replaced: another database on the same server. */
export function withDatabase(databaseUrl: string, database: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** Creates database `name` on the server of `serverUrl` (any database there to connect to). */
export async function createDatabase(serverUrl: string, name: string): Promise<void> {
  await runAlone(serverUrl, `CREATE DATABASE ${quoteIdentifier(name)}`);
}

/**
 * Drops database `name` if it exists, ending any sessions still connected to it (Postgres 13+),
 * so a test that leaked a connection cannot leave its database behind.
 */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await runAlone(serverUrl, `DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

async function runAlone(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
