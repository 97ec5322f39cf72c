/**
 * Live events over Server-Sent Events, relayed from Redis pub/sub (src/queue/run-events.ts), so any
 * API replica serves what any worker or replica published:
 *
 * - `GET /v1/runs/:id/events`: one run. Opens with a `status` event (the run as it is now), then
 *   status, progress, metrics and checkpoint events.
 * - `GET /v1/events`: every run's status, progress and checkpoint events (no metric batches):
 *   what a runs list needs to stay live. It opens with a `ready` event; a client reads its list
 *   after that, so nothing falls between the list and the first event.
 *
 * Authentication is the usual `Authorization: Bearer` header: the dashboard reads the streams
 * with fetch() rather than EventSource (which cannot send headers), so no key ever travels in a
 * URL, where logs and browser history would keep it.
 */
import type { PrismaClient } from '../../db/index.js';
import { authenticatedKey } from '../auth/authenticate.js';
import { NotFoundError } from '../errors.js';
import { defineRoute, type RouteSpec } from '../route.js';
import { runIdParams } from '../runs/runs.schemas.js';
import type { EventStreams } from './event-stream.js';
import type { RunEventHub } from './run-event-hub.js';

const STREAM_DESCRIPTION =
  'An event stream (`text/event-stream`): `event: <type>`, `data:` the event as JSON';

export function eventsRoutes(deps: {
  prisma: PrismaClient;
  hub: RunEventHub;
  streams: EventStreams;
  /** EVENT_SUBSCRIBE_TIMEOUT_MS: how long a stream waits for Redis before it answers 503. */
  subscribeTimeoutMs: number;
}): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/runs/:id/events',
      tag: 'runs',
      summary: "A run's live events (text/event-stream): status, progress, metrics, checkpoint",
      request: { params: runIdParams },
      responses: { 200: { description: STREAM_DESCRIPTION } },
      async handle({ params }, res) {
        const runId = params.id;
        const stream = deps.streams.start(res, authenticatedKey(res).id);
        const stop = await deps.hub.listen(
          runId,
          (event) => stream.send({ type: event.type, data: event }),
          deps.subscribeTimeoutMs,
        );
        let run;
        try {
          run = await deps.prisma.run.findUnique({
            where: { id: runId },
            select: { status: true, progress: true },
          });
        } catch (error) {
          stop();
          throw error;
        }
        if (!run) {
          stop();
          throw new NotFoundError(`run ${runId}`);
        }
        stream.open(
          {
            type: 'status',
            data: { type: 'status', runId, status: run.status, progress: run.progress },
          },
          stop,
        );
      },
    }),

    defineRoute({
      method: 'get',
      path: '/v1/events',
      tag: 'runs',
      summary:
        "Every run's live status, progress and checkpoint events (text/event-stream), for runs lists",
      request: {},
      responses: { 200: { description: STREAM_DESCRIPTION } },
      async handle(_input, res) {
        const stream = deps.streams.start(res, authenticatedKey(res).id);
        const stop = await deps.hub.listenAll(
          (event) => stream.send({ type: event.type, data: event }),
          deps.subscribeTimeoutMs,
        );
        stream.open({ type: 'ready', data: { type: 'ready' } }, stop);
      },
    }),
  ];
}
