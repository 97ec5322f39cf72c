/**
 * API keys in Postgres. A key is 32 random bytes (`gq_` + base64url); only its SHA-256 is
 * stored, so a database dump does not hold usable keys. Keys carry 256 bits of entropy, so one
 * fast hash is enough (no password-style stretching), and the lookup by hash leaks nothing an
 * attacker could steer; the final comparison is constant-time all the same.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Prisma, type ApiKey, type PrismaClient } from '../../db/index.js';
import { SCOPES, type Scope } from './scopes.js';

/** Prefix of keys this system makes: recognisable in logs, config files and secret scanners. */
export const KEY_PREFIX = 'gq_';

/** How often `lastUsedAt` is written per key, at most (one write per request would be a lot). */
const LAST_USED_EVERY_MS = 60_000;

export interface AuthenticatedKey {
  id: string;
  name: string;
  scopes: Scope[];
}

export class ApiKeyNotFoundError extends Error {
  override name = 'ApiKeyNotFoundError';
}

export class ApiKeyNameTakenError extends Error {
  override name = 'ApiKeyNameTakenError';
}

export function generateApiKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Enough to tell keys apart in a listing (`gq_AbCdEf…`), far too little to guess the rest. */
function displayPrefix(key: string): string {
  return `${key.slice(0, KEY_PREFIX.length + 6)}…`;
}

function toAuthenticated(row: ApiKey): AuthenticatedKey {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)),
  };
}

export interface ApiKeyStore {
  /** Creates a key; the returned `key` is the only time it exists outside its holder. */
  create(input: { name: string; scopes: Scope[] }): Promise<{ id: string; key: string }>;
  /** Revokes by id or name; revoking a revoked key changes nothing. */
  revoke(idOrName: string): Promise<{ id: string; name: string }>;
  /** The live key matching `key`, or null (unknown or revoked). */
  verify(key: string): Promise<AuthenticatedKey | null>;
  /** Which of these key ids are live (not revoked): one indexed query. */
  liveKeyIds(ids: string[]): Promise<Set<string>>;
  /**
   * Makes the live `env` keys exactly `keys` (API_KEYS): listed keys are added (or revived) with
   * every scope, env keys no longer listed are revoked. Keys made with keys:create are untouched.
   */
  syncEnvKeys(keys: string[]): Promise<void>;
}

export function createApiKeyStore(prisma: PrismaClient): ApiKeyStore {
  const lastUsedWritten = new Map<string, number>();

  return {
    async create({ name, scopes }) {
      const key = generateApiKey();
      try {
        const row = await prisma.apiKey.create({
          data: {
            name,
            keyHash: hashApiKey(key),
            keyPrefix: displayPrefix(key),
            scopes: [...new Set(scopes)],
            source: 'cli',
          },
        });
        return { id: row.id, key };
      } catch (error) {
        if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002')
          throw new ApiKeyNameTakenError(`a key named '${name}' exists already`);
        throw error;
      }
    },

    async revoke(idOrName) {
      const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(
        idOrName,
      );
      const row = await prisma.apiKey.findFirst({
        where: isUuid ? { OR: [{ id: idOrName }, { name: idOrName }] } : { name: idOrName },
      });
      if (!row) throw new ApiKeyNotFoundError(`no key with id or name '${idOrName}'`);
      if (!row.revokedAt)
        await prisma.apiKey.update({ where: { id: row.id }, data: { revokedAt: new Date() } });
      return { id: row.id, name: row.name };
    },

    async verify(key) {
      if (key.length === 0 || key.length > 200) return null;
      const hash = hashApiKey(key);
      const row = await prisma.apiKey.findUnique({ where: { keyHash: hash } });
      if (!row || row.revokedAt) return null;
      if (!timingSafeEqual(Buffer.from(row.keyHash, 'hex'), Buffer.from(hash, 'hex'))) return null;
      const now = Date.now();
      if ((lastUsedWritten.get(row.id) ?? 0) < now - LAST_USED_EVERY_MS) {
        lastUsedWritten.set(row.id, now);
        // Bookkeeping only: a failed write must not fail the request.
        void prisma.apiKey
          .update({ where: { id: row.id }, data: { lastUsedAt: new Date(now) } })
          .catch(() => undefined);
      }
      return toAuthenticated(row);
    },

    async liveKeyIds(ids) {
      if (ids.length === 0) return new Set();
      const rows = await prisma.apiKey.findMany({
        where: { id: { in: ids }, revokedAt: null },
        select: { id: true },
      });
      return new Set(rows.map((r) => r.id));
    },

    async syncEnvKeys(keys) {
      const hashes = [...new Set(keys.map(hashApiKey))];
      await prisma.$transaction(async (tx) => {
        for (const keyHash of hashes) {
          await tx.apiKey.upsert({
            where: { keyHash },
            // Env keys are authoritative: a listed key is live, even if revoked before.
            update: { revokedAt: null, scopes: [...SCOPES] },
            create: {
              name: `env-${keyHash.slice(0, 12)}`,
              keyHash,
              // Operators choose these keys: store none of their characters.
              keyPrefix: 'API_KEYS',
              scopes: [...SCOPES],
              source: 'env',
            },
          });
        }
        await tx.apiKey.updateMany({
          where: { source: 'env', revokedAt: null, keyHash: { notIn: hashes } },
          data: { revokedAt: new Date() },
        });
      });
    },
  };
}
