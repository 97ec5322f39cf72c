/**
 * The limit on failed API key lookups per client address: after AUTH_FAILURE_MAX unknown keys
 * within the window the address gets 429 (with Retry-After) on every replica, except for keys a
 * replica verified lately (users sharing the address keep working); other addresses are
 * untouched; X-Forwarded-For counts only behind a trusted proxy; the window ends the block.
 */
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
const freshKey = async () =>
  (await one.apiKeys.create({ name: `k-${Math.random()}`, scopes: ['read'] })).key;

describe('failed API key lookups per address', () => {
  it('block an address after the limit on every replica, except keys verified lately, until the window ends', async () => {
    // Two failures on one replica, one on the other: the count is shared.
    for (const api of [one, one, two]) {
      const res = await getJson(`${api.url}/v1/runs`, from('10.0.0.1', WRONG));
      expect(res.status).toBe(401);
    }
    const unverified = await freshKey();
    const blocked = await getJson(`${one.url}/v1/runs`, from('10.0.0.1', unverified));
    expect(blocked.status).toBe(429);
    expect(blocked.json.detail).toMatch(/too many unknown API keys from this address/);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(blocked.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await getJson(`${two.url}/v1/runs`, from('10.0.0.1', WRONG))).status).toBe(429);

    // Another address is not affected, nor is a good key counted as a failure.
    const known = await freshKey();
    for (let i = 0; i < 5; i++)
      expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.2', known))).status).toBe(200);
    // A key replica one just verified passes the blocked address there; not on replica two,
    // which has not seen it, nor does an unverified key.
    expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.1', known))).status).toBe(200);
    expect((await getJson(`${two.url}/v1/runs`, from('10.0.0.1', known))).status).toBe(429);
    expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.1', unverified))).status).toBe(429);

    await new Promise((resolve) =>
      setTimeout(resolve, Number(blocked.headers.get('retry-after')) * 1000 + 300),
    );
    expect((await getJson(`${two.url}/v1/runs`, from('10.0.0.1', unverified))).status).toBe(200);
  });

  it('counts an IPv6 client by its /64, so rotating addresses within it does not help', async () => {
    for (const host of ['a', 'b', 'c']) {
      const res = await getJson(`${one.url}/v1/runs`, from(`2001:db8:1:2::${host}`, WRONG));
      expect(res.status).toBe(401);
    }
    const rotated = await getJson(
      `${one.url}/v1/runs`,
      from('2001:db8:1:2:ffff::1', await freshKey()),
    );
    expect(rotated.status).toBe(429);
    const neighbour = await getJson(
      `${one.url}/v1/runs`,
      from('2001:db8:1:3::1', await freshKey()),
    );
    expect(neighbour.status).toBe(200);
  });

  it('counts the socket address, not X-Forwarded-For, without a trusted proxy', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await getJson(`${direct.url}/v1/runs`, from(`10.9.9.${i}`, WRONG));
      expect(res.status).toBe(401);
    }
    const res = await getJson(`${direct.url}/v1/runs`, from('10.9.9.200', await freshKey()));
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
    expect((await getJson(`${one.url}/v1/runs`, from('10.0.0.3', await freshKey()))).status).toBe(
      200,
    );
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
