/**
 * Runs the `gq` CLI as a user would: a child process through tsx, with only PATH, HOME and the
 * given environment (GQ_API_URL, GQ_API_KEY). Asynchronous, since the API answering it usually
 * lives in the test's own process.
 */
import { execFile, spawn } from 'node:child_process';

export interface GqResult {
  code: number;
  stdout: string;
  stderr: string;
}

const CLI = ['--import', 'tsx', 'src/client/cli.ts'];

function cliEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...env };
}

/** Runs `gq args` to its end. */
export function runGq(args: string[], env: Record<string, string | undefined>): Promise<GqResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...CLI, ...args],
      { env: cliEnv(env), timeout: 90_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export interface RunningGq {
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout (or stderr) matches `pattern`; rejects after `ms`, or if gq exits. */
  waitFor(pattern: RegExp, stream?: 'stdout' | 'stderr', ms?: number): Promise<void>;
  /** The whole run. */
  exited: Promise<GqResult>;
  kill(): void;
}

/** Starts `gq args` and returns while it runs (`watch`, to act on the run meanwhile). */
export function startGq(args: string[], env: Record<string, string | undefined>): RunningGq {
  const child = spawn(process.execPath, [...CLI, ...args], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  const changed = () => listeners.forEach((listener) => listener());
  child.stdout.on('data', (d: Buffer) => ((output.stdout += d.toString()), changed()));
  child.stderr.on('data', (d: Buffer) => ((output.stderr += d.toString()), changed()));
  let done = false;
  const exited = new Promise<GqResult>((resolve) =>
    child.once('close', (code) => {
      done = true;
      resolve({ code: code ?? -1, ...output });
      changed();
    }),
  );
  return {
    stdout: () => output.stdout,
    stderr: () => output.stderr,
    exited,
    kill: () => child.kill('SIGKILL'),
    waitFor(pattern, stream = 'stdout', ms = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(`no ${pattern} within ${ms} ms`), ms);
        const check = () => {
          if (pattern.test(output[stream])) finish();
          else if (done) finish(`gq exited before ${pattern}`);
        };
        function finish(failure?: string) {
          clearTimeout(timer);
          listeners.delete(check);
          if (failure)
            reject(new Error(`${failure}\nstdout: ${output.stdout}\nstderr: ${output.stderr}`));
          else resolve();
        }
        listeners.add(check);
        check();
      });
    },
  };
}
