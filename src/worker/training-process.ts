/**
 * Starts the child process that trains one job and turns its messages into a result.
 *
 * Why a process: tfjs ops are long synchronous calls; on the worker's own event loop they would
 * stall BullMQ's lock renewal and another worker would start the same job. A fresh process per
 * job also releases all tfjs and GPU memory when the job ends.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EvalResult, TrainResult } from '../spec/run-results.js';
import { childEnvironment } from './child-environment.js';
import { guardChildMemory, type MemoryDeath } from './child-memory-watch.js';
import type { ChildMessage, EvalStartMessage, StartMessage, StopMessage } from './ipc.js';

export type TrainingOutcome =
  | { outcome: 'done'; result: TrainResult | EvalResult }
  | { outcome: 'failed'; error: { name: string; message: string; unrecoverable: boolean } }
  | { outcome: 'stopped'; step: number; reason: StopMessage['reason'] }
  | {
      outcome: 'crashed';
      code: number | null;
      signal: NodeJS.Signals | null;
      /** Set when memory killed it: its limit here, or the kernel's OOM killer. */
      memory?: MemoryDeath;
    };

/** What the parent enforces on a child. */
export interface ChildLimits {
  /** Resident memory the child may use; past it the child is killed. Unset: no watch. */
  memoryBytes?: number;
  /** How long a child asked to cancel has to stop before it is killed. Unset: it waits. */
  cancelGraceMs?: number;
}

export interface TrainingProcess {
  readonly pid: number | undefined;
  /** Ask the child to stop between steps; a cancel kills it after the cancel grace. */
  stop(reason: StopMessage['reason']): void;
  /** Kill the child now. */
  kill(signal?: NodeJS.Signals): void;
  /** True once a cancel was asked of this child, whether or not it lived to answer. */
  readonly cancelRequested: boolean;
  /** Settles once the child has exited. */
  readonly finished: Promise<TrainingOutcome>;
}

/** The child entry in child/ beside this file: .ts under tsx (dev, tests), .js when built. */
function childEntry(): { file: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ext = path.extname(here);
  return {
    file: path.join(path.dirname(here), 'child', `training-child${ext}`),
    execArgv: ext === '.ts' ? ['--import', 'tsx'] : [],
  };
}

export function startTrainingProcess(
  start: StartMessage | EvalStartMessage,
  onMessage: (message: ChildMessage) => void,
  env: NodeJS.ProcessEnv = process.env,
  limits: ChildLimits = {},
): TrainingProcess {
  const { file, execArgv } = childEntry();
  const child: ChildProcess = fork(file, [], {
    execArgv,
    // No database, Redis or store credentials: the child needs none (child-environment.ts).
    env: childEnvironment(env),
    // Its own process group: Ctrl-C in a terminal (or systemd stopping the worker's group)
    // must reach only the worker, which then stops the child between steps and requeues the
    // run. The child still exits by itself when the worker dies (IPC disconnect).
    detached: true,
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let last: TrainingOutcome | undefined;
  let killedByParent = false;
  let cancelRequested = false;
  let cancelGrace: NodeJS.Timeout | undefined;
  const kill = (signal: NodeJS.Signals = 'SIGKILL'): void => {
    if (signal === 'SIGKILL') killedByParent = true;
    child.kill(signal);
  };
  const memory =
    limits.memoryBytes !== undefined && child.pid !== undefined
      ? guardChildMemory(child.pid, limits.memoryBytes, () => child.kill('SIGKILL'))
      : undefined;
  child.on('message', (raw) => {
    const message = raw as ChildMessage;
    if (message.type === 'done') last = { outcome: 'done', result: message.result };
    else if (message.type === 'failed') last = { outcome: 'failed', error: message.error };
    else if (message.type === 'stopped')
      last = { outcome: 'stopped', step: message.step, reason: message.reason };
    onMessage(message);
  });
  const crashed = (code: number | null, signal: NodeJS.Signals | null): TrainingOutcome => {
    const death = memory?.verdict(signal, killedByParent);
    return { outcome: 'crashed', code, signal, ...(death ? { memory: death } : {}) };
  };
  const finished = new Promise<TrainingOutcome>((resolve) => {
    child.on('exit', (code, signal) => resolve(last ?? crashed(code, signal)));
    child.on('error', () => resolve(last ?? crashed(null, null)));
  }).finally(() => {
    memory?.stop();
    clearTimeout(cancelGrace);
  });
  child.send(start);
  return {
    pid: child.pid,
    stop: (reason) => {
      if (reason === 'cancel' && !cancelRequested) {
        cancelRequested = true;
        // A child busy outside its step loop (building a huge model, stuck in a decoder)
        // never reads the stop message: past the grace it is killed, and the run still ends
        // cancelled.
        if (limits.cancelGraceMs !== undefined) {
          cancelGrace = setTimeout(() => kill('SIGKILL'), limits.cancelGraceMs);
          cancelGrace.unref();
        }
      }
      if (child.connected) child.send({ type: 'stop', reason } satisfies StopMessage);
    },
    kill,
    get cancelRequested() {
      return cancelRequested;
    },
    finished,
  };
}
