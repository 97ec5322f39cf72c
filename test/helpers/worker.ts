import { spawn, type ChildProcess } from 'node:child_process';
import { REDIS_URL } from './queue.js';

/** A real worker process (wasm, one thread) on a test file's database and queue prefix. */
export function startWorker(options: {
  databaseUrl: string;
  queuePrefix: string;
  scratchRoot: string;
  env?: Record<string, string>;
}): { process: ChildProcess; log(): string; stop(): Promise<void> } {
  let log = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      REDIS_URL,
      QUEUE_PREFIX: options.queuePrefix,
      SCRATCH_ROOT: options.scratchRoot,
      TRAIN_BACKEND: 'wasm',
      TRAIN_THREADS: '1',
      LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  return {
    process: child,
    log: () => log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Polls `probe` every 250 ms until it returns a value; fails after `timeoutMs` with `detail()`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  detail: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
