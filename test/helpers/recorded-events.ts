import type { RunEvent, RunEventPublisher } from '../../src/queue/run-events.js';

/** A run event publisher that keeps what it is given, for tests that read the events back. */
export function recordedEvents(): RunEventPublisher & { events: RunEvent[] } {
  const events: RunEvent[] = [];
  return {
    events,
    publish: async (event) => {
      events.push(event);
    },
  };
}
