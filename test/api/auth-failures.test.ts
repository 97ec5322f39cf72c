/**
 * The limit on failed API key lookups per client address: after AUTH_FAILURE_MAX unknown keys
 * within the window the address's unknown keys get 429 (with Retry-After) on every replica and
 * after a restart; a valid key always passes, whichever replica and however new (users sharing
 * the address with a hostile client keep working); other addresses are untouched;
 * X-Forwarded-For counts only behind a trusted proxy; the window ends the block.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressKey } from '../../src/api/auth/failed-auth-limit.js';
import { getJson, startApi, type TestApi } from '../helpers/api.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createTestQueue } from '../helpers/queue.js';

let db: TestDatabase;
let queue: Awaited<ReturnType<typeof createTestQueue>>;
let one: TestApi;
let two: TestApi;
let direct: TestApi;

const LIMITS = { AUTH_FAILURE_MAX: 3, AUTH_FAILURE_WINDOW_SECONDS: 5 };

beforeAll(async () => {
  db = await createTestDatabase('api_auth_failures');
  queue = await createTestQueue('api-auth-failures');
  // The test's requests come from loopback: behind a trusted proxy, X-Forwarded-For gives each
  // "client" its address.
  one = await startApi(db, queue.queue, { ...LIMITS, TRUST_PROXY: 'loopback' });
  two = await startApi(db, queue.queue, { ...LIMITS, TRUST_PROXY: 'loopback' });
  // No trusted proxy: the socket's address counts, whatever the header says.
  direct = await startApi(db, queue.queue, { ...LIMITS, TRUST_PROXY: false });
});
afterAll(async () => {
  for (const api of [one, two, direct]) await api?.close();
  await queue?.close();
  await db?.drop();
});

const from = (address: string, key: string) => ({
  authorization: `Bearer ${key}`,
  'x-forwarded-for': address,
});
const WRONG = `gq_${'0'.repeat(64)}`;
const randomKey = () => `gq_${randomBytes(32).toString('base64url')}`;
const freshKey = async () =>
  (await one.apiKeys.create({ name: `k-${Math.random()}`, scopes: ['read'] })).key;

describe('failed API key lookups per address', () => {
  it('block unknown keys from an address after the limit on every replica, and after a restart, until the window ends', async () => {
    // Two failures on one replica, one on the other: the count is shared.
    for (const api of [one, one, two]) {
      const res = await getJson(`${api.url}/v1/runs`, from('10.0.0.1', WRONG));
      expect(res.status).toBe(401);
    }
    const blocked = await getJson(`${one.url}/v1/runs`, from('10.0.0.1', randomKey()));
    expect(blocked.status).toBe(429);
    expect(blocked.json.detail).toMatch(/too many unknown API keys from this address/);
    expect(blocked.json.detail).toMatch(/AUTH_FAILURE_MAX/);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(blocked.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await getJson(`${two.url}/v1/runs`, from('10.0.0.1', WRONG))).status).toBe(429);

    // Another address is not affected.
    expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.2', WRONG))).status).toBe(401);

    // The API restarted (a new process on the same Redis): the block holds. (Until its Redis
    // connection is up, a process counts in memory: give it a moment to connect.)
    const restarted = await startApi(db, queue.queue, { ...LIMITS, TRUST_PROXY: 'loopback' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    try {
      expect((await getJson(`${restarted.url}/v1/runs`, from('10.0.0.1', WRONG))).status).toBe(429);
    } finally {
      await restarted.close();
    }

    await new Promise((resolve) =>
      setTimeout(resolve, Number(blocked.headers.get('retry-after')) * 1000 + 300),
    );
    expect((await getJson(`${two.url}/v1/runs`, from('10.0.0.1', WRONG))).status).toBe(401);
  });

  it('never block a valid key: on any replica, after a restart, even one never used before', async () => {
    // A flood of random keys from the address, spread over both replicas.
    for (let i = 0; i < 20; i++) {
      const res = await getJson(`${[one, two][i % 2]!.url}/v1/runs`, from('10.0.0.5', randomKey()));
      expect([401, 429]).toContain(res.status);
    }
    expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.5', WRONG))).status).toBe(429);
    // A key verified on replica one, then on replica two (which never saw it).
    const used = await freshKey();
    expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.5', used))).status).toBe(200);
    expect((await getJson(`${two.url}/v1/runs`, from('10.0.0.5', used))).status).toBe(200);
    // A key never used anywhere.
    expect((await getJson(`${two.url}/v1/runs`, from('10.0.0.5', await freshKey()))).status).toBe(
      200,
    );
    // After a restart, which forgets whatever a process remembered.
    const restarted = await startApi(db, queue.queue, { ...LIMITS, TRUST_PROXY: 'loopback' });
    try {
      for (const key of [used, await freshKey(), restarted.key]) {
        const res = await getJson(`${restarted.url}/v1/runs`, from('10.0.0.5', key));
        expect(res.status).toBe(200);
      }
    } finally {
      await restarted.close();
    }
  });

  it('counts an IPv6 client by its /64, so rotating addresses within it does not help', async () => {
    for (const host of ['a', 'b', 'c']) {
      const res = await getJson(`${one.url}/v1/runs`, from(`2001:db8:1:2::${host}`, WRONG));
      expect(res.status).toBe(401);
    }
    const rotated = await getJson(`${one.url}/v1/runs`, from('2001:db8:1:2:ffff::1', WRONG));
    expect(rotated.status).toBe(429);
    const neighbour = await getJson(`${one.url}/v1/runs`, from('2001:db8:1:3::1', WRONG));
    expect(neighbour.status).toBe(401);
  });

  it('counts the socket address, not X-Forwarded-For, without a trusted proxy', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await getJson(`${direct.url}/v1/runs`, from(`10.9.9.${i}`, WRONG));
      expect(res.status).toBe(401);
    }
    const res = await getJson(`${direct.url}/v1/runs`, from('10.9.9.200', WRONG));
    expect(res.status).toBe(429);
  });

  it('does not count requests without a key (they cost no lookup)', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await getJson(`${one.url}/v1/runs`, {
        authorization: '',
        'x-forwarded-for': '10.0.0.3',
      });
      expect(res.status).toBe(401);
    }
    expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.3', WRONG))).status).toBe(401);
  });
});

describe('addressKey', () => {
  it('keeps IPv4 (also IPv4-mapped) addresses and reduces IPv6 to its /64', () => {
    expect(addressKey('10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('2001:DB8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });
});
