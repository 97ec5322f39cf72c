/**
 * Entry point of the child process that trains one job. Compute only: it receives a `start`
 * message, trains, and reports over IPC; the parent worker owns every Redis and Postgres
 * connection. It exits by itself when the parent goes away (IPC disconnect), so no orphan keeps
 * training after its worker died.
 */
import type { ChildMessage, ParentMessage, StopMessage } from '../ipc.js';
import { isUnrecoverable } from '../../spec/unrecoverable-run-error.js';
import { runEvaluation } from './eval-run.js';
import { runTraining } from './train-run.js';

function send(message: ChildMessage): void {
  // A failed send means the worker is gone: stop, as on disconnect, rather than crash on EPIPE.
  if (!process.connected) process.exit(0);
  process.send?.(message, undefined, undefined, (error) => {
    if (error) process.exit(0);
  });
}

let stopReason: StopMessage['reason'] | undefined;

process.on('disconnect', () => process.exit(0));
process.on('message', (raw: unknown) => {
  const message = raw as ParentMessage;
  if (message.type === 'stop') {
    stopReason = message.reason;
    return;
  }
  const controls = { stopRequested: () => stopReason };
  (message.type === 'start-eval'
    ? runEvaluation(message, send, controls)
    : runTraining(message, send, controls)
  )
    // Exit on the next turn, so the last IPC messages (done, stopped) are written first.
    .then(() => setImmediate(() => process.exit(0)))
    .catch((error: unknown) => {
      const e = error instanceof Error ? error : new Error(String(error));
      // (Unusable checkpoints are skipped when resuming; a CheckpointError here comes from
      // saving one, a disk problem a retry may not have: it is not marked.)
      const unrecoverable = isUnrecoverable(e);
      send({ type: 'failed', error: { name: e.name, message: e.message, unrecoverable } });
      // Let the IPC message leave before exiting.
      setImmediate(() => process.exit(1));
    });
});
