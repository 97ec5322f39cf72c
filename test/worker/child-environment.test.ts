import { describe, expect, it } from 'vitest';
import { childEnvironment } from '../../src/worker/child-environment.js';

describe('the training child environment', () => {
  it('keeps what training reads and drops every credential the worker holds', () => {
    const env = childEnvironment({
      PATH: '/usr/bin',
      NODE_ENV: 'production',
      CUDA_VISIBLE_DEVICES: '1',
      TRAIN_THREADS: '2',
      DATA_ROOT: '/data',
      DATABASE_URL: 'postgresql://gq_app:pw@postgres/gq',
      DATABASE_URL_FILE: '/run/secrets/db',
      REDIS_URL: 'redis://:pw@redis:6379',
      API_KEYS: 'k'.repeat(40),
      S3_ACCESS_KEY_ID: 'AKIA',
      S3_SECRET_ACCESS_KEY: 'secret',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_SESSION_TOKEN: 'token',
      REDIS_PASSWORD: 'pw',
      POSTGRES_APP_PASSWORD: 'pw',
      GQ_API_KEY: 'gq_x',
    });
    expect(env).toEqual({
      PATH: '/usr/bin',
      NODE_ENV: 'production',
      CUDA_VISIBLE_DEVICES: '1',
      TRAIN_THREADS: '2',
      DATA_ROOT: '/data',
    });
  });
});
