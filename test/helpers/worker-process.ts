/**
 * A real worker process (`src/worker/main.ts`) for tests, with its log captured and its
 * training children findable, so tests can kill exactly what a fault would kill.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface WorkerProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Everything it printed (JSON log lines). */
  log(): string;
  /** Settles with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** Pids of its running training children. */
  trainingChildren(): number[];
  /** kill -9 of the worker and its training children (a machine or container dying). */
  killTree(): void;
  /** Sends SIGTERM and waits for the exit; returns the code and how long it took. */
  terminate(): Promise<{ code: number | null; ms: number }>;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Pids whose parent is `pid`, from /proc (field 4 of /proc/<pid>/stat is the parent). */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name (field 2) may hold spaces; fields after its ')' are plain.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // the process exited while we looked
    }
  }
  return children;
}

export function startWorkerProcess(env: Record<string, string>): WorkerProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/worker/main.ts'], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  const pid = proc.pid;
  if (pid === undefined) throw new Error('worker did not start');
  // Only the training children: under tsx the worker also has an esbuild service process.
  const trainingChildren = (): number[] =>
    childPids(pid).filter((child) => {
      try {
        return readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('training-child');
      } catch {
        return false;
      }
    });
  return {
    proc,
    pid,
    log: () => log,
    exited,
    trainingChildren,
    killTree() {
      const children = trainingChildren();
      proc.kill('SIGKILL');
      for (const child of children) if (isAlive(child)) process.kill(child, 'SIGKILL');
    },
    async terminate() {
      const started = Date.now();
      if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, ms: 0 };
      proc.kill('SIGTERM');
      const code = await exited;
      return { code, ms: Date.now() - started };
    },
  };
}

/** Polls `probe` until it returns a value; the error names what was awaited. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  context: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
