import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadCliConfig, loadConfig } from '../src/config.js';

describe('config', () => {
  it('defaults TRAIN_BACKEND to auto', () => {
    expect(loadConfig({})).toMatchObject({ TRAIN_BACKEND: 'auto', LOG_LEVEL: 'info' });
  });

  it('names the bad variable', () => {
    expect(() => loadConfig({ TRAIN_BACKEND: 'tpu' })).toThrow(ConfigError);
    expect(() => loadConfig({ TRAIN_BACKEND: 'tpu' })).toThrow(/TRAIN_BACKEND/);
    expect(() => loadConfig({ TRAIN_THREADS: 'many' })).toThrow(/TRAIN_THREADS/);
  });

  it('defaults the artifact store to postgres and requires a bucket for s3', () => {
    expect(loadConfig({})).toMatchObject({
      ARTIFACT_STORE: 'postgres',
      S3_FORCE_PATH_STYLE: false,
    });
    expect(() => loadConfig({ ARTIFACT_STORE: 's3' })).toThrow(/S3_BUCKET: required/);
    expect(
      loadConfig({ ARTIFACT_STORE: 's3', S3_BUCKET: 'b', S3_FORCE_PATH_STYLE: 'true' }),
    ).toMatchObject({ S3_BUCKET: 'b', S3_FORCE_PATH_STYLE: true });
    expect(() => loadConfig({ ARTIFACT_STORE: 'nfs' })).toThrow(/ARTIFACT_STORE/);
  });
});

describe('config of the API hardening', () => {
  it('splits API_KEYS and CORS_ORIGINS on commas, and reads TRUST_PROXY as Express takes it', () => {
    const a = 'a'.repeat(32);
    const b = `gq_${'b'.repeat(43)}`;
    const config = loadConfig({
      API_KEYS: ` ${a} ,${b},`,
      CORS_ORIGINS: 'https://dash.example, http://localhost:5173',
      TRUST_PROXY: '2',
    });
    expect(config.API_KEYS).toEqual([a, b]);
    expect(config.CORS_ORIGINS).toEqual(['https://dash.example', 'http://localhost:5173']);
    expect(config.TRUST_PROXY).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).TRUST_PROXY).toBe(
      'loopback, 10.0.0.0/8',
    );
    expect(loadConfig({ TRUST_PROXY: 'true' }).TRUST_PROXY).toBe(true);
  });

  it('defaults to no keys, CORS off, no trusted proxy, 1 MiB bodies and 600 requests a minute', () => {
    expect(loadConfig({})).toMatchObject({
      API_KEYS: [],
      CORS_ORIGINS: [],
      TRUST_PROXY: false,
      BODY_LIMIT_BYTES: 1024 * 1024,
      RATE_LIMIT_MAX: 600,
      RATE_LIMIT_WINDOW_SECONDS: 60,
    });
  });

  it('refuses short keys, origins that are not http(s) URLs and silly limits, without echoing keys', () => {
    const short = 'tooshort-secret';
    expect(() => loadConfig({ API_KEYS: short })).toThrow(
      /API_KEYS\.0: each key needs at least 32/,
    );
    try {
      loadConfig({ API_KEYS: short });
    } catch (error) {
      expect((error as Error).message).not.toContain(short);
    }
    expect(() => loadConfig({ CORS_ORIGINS: '*' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CORS_ORIGINS: 'file:///etc' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ BODY_LIMIT_BYTES: '10' })).toThrow(/BODY_LIMIT_BYTES/);
    expect(() => loadConfig({ RATE_LIMIT_MAX: '-1' })).toThrow(/RATE_LIMIT_MAX/);
  });

  it('reads the CLI settings on their own', () => {
    expect(loadCliConfig({})).toEqual({ GQ_API_URL: 'http://localhost:8080' });
    expect(loadCliConfig({ GQ_API_URL: 'https://gq.example', GQ_API_KEY: 'k' })).toEqual({
      GQ_API_URL: 'https://gq.example',
      GQ_API_KEY: 'k',
    });
    expect(() => loadCliConfig({ GQ_API_URL: 'not a url' })).toThrow(/GQ_API_URL/);
  });
});

describe('secrets given as files', () => {
  const secretDir = mkdtempSync(path.join(tmpdir(), 'gq-config-secrets-'));
  afterAll(() => rmSync(secretDir, { recursive: true, force: true }));
  const secretFile = (name: string, content: string): string => {
    const file = path.join(secretDir, name);
    writeFileSync(file, content);
    return file;
  };

  it('reads NAME_FILE into NAME without the trailing newline, for the connection strings and keys', () => {
    const key = 'k'.repeat(40);
    const config = loadConfig({
      DATABASE_URL_FILE: secretFile('db', 'postgresql://gq_app:pw@db:5432/gq\n'),
      REDIS_URL_FILE: secretFile('redis', 'redis://:pw@redis:6379'),
      API_KEYS_FILE: secretFile('keys', `${key}\r\n`),
    });
    expect(config.DATABASE_URL).toBe('postgresql://gq_app:pw@db:5432/gq');
    expect(config.REDIS_URL).toBe('redis://:pw@redis:6379');
    expect(config.API_KEYS).toEqual([key]);
    expect(loadCliConfig({ GQ_API_KEY_FILE: secretFile('cli', 'gq_abc\n') }).GQ_API_KEY).toBe(
      'gq_abc',
    );
  });

  it('refuses a variable given both ways, and a file it cannot read, naming the variable', () => {
    const both = {
      REDIS_URL: 'redis://a:6379',
      REDIS_URL_FILE: secretFile('r2', 'redis://b:6379'),
    };
    expect(() => loadConfig(both)).toThrow(/REDIS_URL and REDIS_URL_FILE are both set/);
    const missing = path.join(secretDir, 'absent');
    expect(() => loadConfig({ S3_SECRET_ACCESS_KEY_FILE: missing })).toThrow(ConfigError);
    expect(() => loadConfig({ S3_SECRET_ACCESS_KEY_FILE: missing })).toThrow(
      /S3_SECRET_ACCESS_KEY_FILE: cannot read .*absent \(ENOENT\)/,
    );
  });

  it('needs a password with DATABASE_APP_ROLE and a plain role name', () => {
    expect(() => loadConfig({ DATABASE_APP_ROLE: 'gq_app' })).toThrow(
      /DATABASE_APP_PASSWORD: required when DATABASE_APP_ROLE is set/,
    );
    expect(() =>
      loadConfig({ DATABASE_APP_ROLE: 'gq"; DROP', DATABASE_APP_PASSWORD: 'x' }),
    ).toThrow(/DATABASE_APP_ROLE/);
    expect(
      loadConfig({
        DATABASE_APP_ROLE: 'gq_app',
        DATABASE_APP_PASSWORD_FILE: secretFile('app', 'pw\n'),
      }),
    ).toMatchObject({ DATABASE_APP_ROLE: 'gq_app', DATABASE_APP_PASSWORD: 'pw' });
  });
});
