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
});
