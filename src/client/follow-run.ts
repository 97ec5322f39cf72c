/**
 * Follows a run to its end over its event stream, keeping a `RunResponse` up to date: progress
 * and metrics events change it in place, and each status event reads the run again (`get`), since
 * the record has what an event does not say (result, error, latest metrics of every series). The
 * status event that opens every connection makes a reconnect resync by the same path.
 */
import {
  ApiError,
  TERMINAL_STATUSES,
  type ApiClient,
  type RunResponse,
  type RunStreamEvent,
} from './api-client.js';

export interface FollowRunOptions {
  /** Called with the run after each change, first with the run as it is when the stream opens. */
  onChange(run: RunResponse): void;
  /**
   * Called when the stream is lost before the run ended (the server closed it, the connection
   * broke, the API cannot be reached), once per outage rather than once per failed attempt.
   */
  onDrop?(reason: string): void;
  /** Wait before each reconnect. @defaultValue 1000 */
  reconnectDelayMs?: number;
}

/**
 * Resolves with the run once it has ended (succeeded, failed or cancelled). Rejects with the
 * `ApiError` of a refusal (`404` unknown run, `401`), but keeps trying through outages: a dropped
 * stream, a refused connection, a gateway's 502/503/504.
 */
export async function followRun(
  client: ApiClient,
  id: string,
  options: FollowRunOptions,
): Promise<RunResponse> {
  const delay = options.reconnectDelayMs ?? 1000;
  let run: RunResponse | undefined;
  let connected = true; // so that a failure of the very first attempt is reported too
  for (;;) {
    let reason = 'the stream ended';
    try {
      for await (const event of client.events(id)) {
        connected = true;
        // A status, or an event too large for the stream: read the run again.
        const next =
          event.type === 'status' || event.type === 'too-large' || !run
            ? await client.get(id)
            : applyEvent(run, event);
        if (next === run) continue;
        run = next;
        options.onChange(run);
        // Leaving the loop closes the stream.
        if (TERMINAL_STATUSES.has(run.status)) return run;
      }
    } catch (error) {
      if (!isOutage(error)) throw error;
      reason = describeOutage(error);
    }
    if (connected) options.onDrop?.(reason);
    connected = false;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** The run as an event changes it; the same object when the event changes nothing shown. */
export function applyEvent(run: RunResponse, event: RunStreamEvent): RunResponse {
  switch (event.type) {
    case 'progress':
      return {
        ...run,
        progress: { step: event.step, totalSteps: event.totalSteps, epoch: event.epoch },
      };
    case 'metrics': {
      const latest = { ...run.latestMetrics };
      for (const series of event.series) {
        const known = latest[series.name];
        if (!known || series.last.step >= known.step) latest[series.name] = series.last;
      }
      return { ...run, latestMetrics: latest };
    }
    case 'status':
      // Read again by followRun; here only the status itself.
      return run.status === event.status ? run : { ...run, status: event.status };
    case 'checkpoint':
    case 'too-large':
      return run;
  }
}

/** Whether `error` is a passing outage worth reconnecting through, not a refusal. */
function isOutage(error: unknown): boolean {
  if (error instanceof ApiError) return [502, 503, 504].includes(error.status);
  // fetch() rejects with a TypeError when it cannot connect, a TimeoutError when no answer came.
  return error instanceof TypeError || (error instanceof Error && error.name === 'TimeoutError');
}

function describeOutage(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } }).cause?.code;
  return `${(error as Error).message}${typeof cause === 'string' ? ` (${cause})` : ''}`;
}
