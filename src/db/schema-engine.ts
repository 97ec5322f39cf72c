/**
 * Prisma's schema engine (the migration engine behind `prisma migrate`) compiled to WebAssembly,
 * talking to PostgreSQL through the pg driver adapter. The Prisma CLI would run a native engine
 * that it downloads on first use; this needs nothing beyond the npm packages.
 *
 * The engine writes the same `migration.sql` files and `_prisma_migrations` rows as the CLI, and
 * takes the same advisory lock, so concurrent migrations of one database are serialized.
 * Four workarounds (each marked "Workaround:" below) make it work with `@prisma/adapter-pg` 7.10
 * on Node 20: Postgres' internal `"char"` type, whole-script execution, the shadow database, and
 * the engine's timers.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  bindMigrationAwareSqlAdapterFactory,
  type ErrorRegistry,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
// The package's main entry imports the .wasm file as an ES module, which Node 20 only allows
// behind --experimental-wasm-modules; so we load the JS glue and instantiate the binary ourselves.
import * as engineGlue from '@prisma/schema-engine-wasm/schema_engine_bg';
import type { SchemaEngine } from '@prisma/schema-engine-wasm/schema_engine_bg';
import pg from 'pg';
import { createDatabase, dropDatabase, withDatabase } from './databases.js';

export type { SchemaEngine } from '@prisma/schema-engine-wasm/schema_engine_bg';

/** Where the engine's own tracing lines go (they are verbose: debug level). */
export type EngineLogFn = (line: string) => void;

export interface OpenSchemaEngineOptions {
  /** Prisma schema files as `[path, content]`, for commands that read the schema. */
  schemaFiles?: [string, string][];
  /** Receives the engine's tracing output. */
  onEngineLog?: EngineLogFn;
}

export interface SchemaEngineSession {
  engine: SchemaEngine;
  /**
   * Runs one engine command. A failure in our adapter code (a connection error, say) reaches
   * the engine only as an id; this puts the original error back.
   */
  run<T>(command: (engine: SchemaEngine) => Promise<T>): Promise<T>;
  /** Frees the engine and closes its connections. */
  close(): Promise<void>;
}

let wasmReady: Promise<void> | undefined;

/**
 * Workaround: the engine never clears its timers (its glue imports no clearTimeout), so a
 * finished command leaves e.g. its 10 s advisory-lock timeout pending, which would keep a CLI
 * process alive for 10 s. They are tracked here and unref'd once no session is open.
 */
const engineTimers = new Set<NodeJS.Timeout>();
let openSessions = 0;

/** Instantiates the engine's WebAssembly module once per process. */
function loadWasm(): Promise<void> {
  wasmReady ??= (async () => {
    const gluePath = createRequire(import.meta.url).resolve(
      '@prisma/schema-engine-wasm/schema_engine_bg',
    );
    const bytes = await readFile(path.join(path.dirname(gluePath), 'schema_engine_bg.wasm'));
    const imports: Record<string, unknown> = { ...engineGlue };
    for (const name of Object.keys(imports)) {
      if (name.startsWith('__wbg_setTimeout_')) imports[name] = trackedSetTimeout;
    }
    const { instance } = await wasmApi().instantiate(bytes, { './schema_engine_bg.js': imports });
    engineGlue.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
  })();
  return wasmReady;
}

/** The part of the WebAssembly JS API used here (its types live in lib "DOM", not ours). */
interface WasmApi {
  instantiate(
    bytes: Uint8Array,
    imports: Record<string, Record<string, unknown>>,
  ): Promise<{ instance: { exports: Record<string, unknown> } }>;
}

function wasmApi(): WasmApi {
  return (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
}

function trackedSetTimeout(callback: () => void, ms: number): NodeJS.Timeout {
  const timer = setTimeout(() => {
    engineTimers.delete(timer);
    callback();
  }, ms >>> 0);
  if (openSessions === 0) timer.unref();
  else engineTimers.add(timer);
  return timer;
}

function releaseEngineTimers(): void {
  if (openSessions > 0) return;
  for (const timer of engineTimers) timer.unref();
  engineTimers.clear();
}

/** Opens a schema engine on `databaseUrl`. Close the session when done. */
export async function openSchemaEngine(
  databaseUrl: string,
  options: OpenSchemaEngineOptions = {},
): Promise<SchemaEngineSession> {
  await loadWasm();
  const adapters = new PgMigrationAdapterFactory(databaseUrl);
  const factory = bindMigrationAwareSqlAdapterFactory(adapters);
  const onEngineLog = options.onEngineLog ?? (() => {});
  openSessions += 1;
  const release = async () => {
    await adapters.disposeAll();
    openSessions -= 1;
    releaseEngineTimers();
  };
  let engine: SchemaEngine;
  try {
    engine = await withOriginalError(factory.errorRegistry, () =>
      engineGlue.SchemaEngine.new({ datamodels: options.schemaFiles }, onEngineLog, factory),
    );
  } catch (error) {
    await release();
    throw error;
  }
  let closed = false;
  return {
    engine,
    run: (command) => withOriginalError(factory.errorRegistry, () => command(engine)),
    async close() {
      if (closed) return;
      closed = true;
      engine.free();
      await release();
    },
  };
}

async function withOriginalError<T>(registry: ErrorRegistry, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw withCause(registry, error);
  }
}

/**
 * The engine reports a failure in adapter code as "External error id#N"; the error itself waits
 * in the registry. Returns an error that names both.
 */
function withCause(registry: ErrorRegistry, error: unknown): unknown {
  const message = error instanceof Error ? error.message : String(error);
  const id = /External error id#(\d+)/.exec(message)?.[1];
  const record = id === undefined ? undefined : registry.consumeError(Number(id));
  if (!record) return error;
  const cause = record.error;
  const summary = message.split('\n')[0] ?? message;
  return new Error(`${summary}: ${cause instanceof Error ? cause.message : String(cause)}`, {
    cause,
  });
}

/**
 * The pg adapter, fixed for the schema engine's needs, with a shadow database that it creates
 * and drops itself.
 */
class PgMigrationAdapterFactory implements SqlMigrationAwareDriverAdapterFactory {
  readonly provider = 'postgres';
  readonly adapterName = '@prisma/adapter-pg';
  private readonly open = new Set<SqlDriverAdapter>();

  constructor(private readonly databaseUrl: string) {}

  async connect(): Promise<SqlDriverAdapter> {
    return this.track(await connectAdapter(this.databaseUrl));
  }

  /**
   * Workaround: adapter-pg's own shadow database, given a connection string, connects to the
   * main database again (the string's database name wins over the `database` option), and drops
   * the shadow while its pool still holds connections, which Postgres refuses. Here the shadow
   * gets its own URL and is dropped only after its pool has ended.
   */
  async connectToShadowDb(): Promise<SqlDriverAdapter> {
    const name = `prisma_migrate_shadow_db_${randomUUID().replaceAll('-', '')}`;
    await createDatabase(this.databaseUrl, name);
    const shadow = await connectAdapter(withDatabase(this.databaseUrl, name));
    const dispose = shadow.dispose.bind(shadow);
    const mainUrl = this.databaseUrl;
    return this.track(
      override(shadow, {
        async dispose() {
          await dispose();
          await dropDatabase(mainUrl, name);
        },
      }),
    );
  }

  /** Disposes adapters the engine left open (it normally disposes them itself). */
  async disposeAll(): Promise<void> {
    const adapters = [...this.open];
    this.open.clear();
    await Promise.allSettled(adapters.map((adapter) => adapter.dispose()));
  }

  private track(adapter: SqlDriverAdapter): SqlDriverAdapter {
    let disposed = false;
    const tracked = override(adapter, {
      dispose: async () => {
        if (disposed) return;
        disposed = true;
        this.open.delete(tracked);
        await adapter.dispose();
      },
    });
    this.open.add(tracked);
    return tracked;
  }
}

/** A PrismaPg adapter on its own pool, with the engine workarounds applied. */
async function connectAdapter(databaseUrl: string): Promise<SqlDriverAdapter> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  pool.on('connect', reportCharAsText);
  const adapter = await new PrismaPg(pool, { disposeExternalPool: true }).connect();
  return override(adapter, {
    /**
     * Workaround: adapter-pg splits scripts on every `;` (even inside strings or function
     * bodies) and runs the pieces one by one, so a failing migration leaves half its statements
     * applied. Sent whole instead: a query without parameters goes over Postgres' simple-query
     * protocol, which runs all statements as one implicit transaction, like the native engine.
     */
    async executeScript(script: string) {
      await adapter.executeRaw({ sql: script, args: [], argTypes: [] });
    },
  });
}

const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;

type QueryResultLike = { fields?: { dataTypeID: number }[] };

/**
 * Workaround: the engine's catalog queries return columns of Postgres' internal one-byte
 * `"char"` type (`pg_class.relkind`, `pg_constraint.contype`, ...), which adapter-pg 7.10 refuses
 * ("Unsupported column type char"). Their values arrive as one-character strings, so reporting
 * them as `text` is exact.
 */
function reportCharAsText(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const retype = (result: unknown): unknown => {
    for (const one of Array.isArray(result) ? result : [result]) {
      for (const field of (one as QueryResultLike | undefined)?.fields ?? []) {
        if (field.dataTypeID === PG_CHAR_OID) field.dataTypeID = PG_TEXT_OID;
      }
    }
    return result;
  };
  const patched = (...args: unknown[]): unknown => {
    const callback = args.at(-1);
    if (typeof callback === 'function') {
      args[args.length - 1] = (error: unknown, result: unknown) =>
        (callback as (e: unknown, r: unknown) => void)(error, error ? result : retype(result));
      return query(...args);
    }
    const returned = query(...args);
    return returned instanceof Promise ? returned.then(retype) : returned;
  };
  client.query = patched as typeof client.query;
}

/** A copy of `adapter` (same prototype chain, same state) with some methods replaced. */
function override(
  adapter: SqlDriverAdapter,
  methods: Partial<Pick<SqlDriverAdapter, 'executeScript' | 'dispose'>>,
): SqlDriverAdapter {
  return Object.assign(Object.create(adapter) as SqlDriverAdapter, methods);
}
