import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

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
