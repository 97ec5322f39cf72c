/**
 * `GET /v1/runs/:id/events`: Server-Sent Events of one run. The stream opens with a `status`
 * event (the run as it is now), then relays what Redis pub/sub carries for the run (status,
 * progress, metrics, checkpoint), from any worker or API replica. A comment line every 15 s keeps
 * proxies from closing an idle stream.
 *
 * Authentication is the usual `Authorization: Bearer` header: the dashboard reads the stream
 * with fetch() rather than EventSource (which cannot send headers), so no key ever travels in a
 * URL, where logs and browser history would keep it.
 */
import type { PrismaClient } from '../../db/index.js';
import { NotFoundError } from '../errors.js';
import { defineRoute, type RouteSpec } from '../route.js';
import { runIdParams } from '../runs/runs.schemas.js';
import type { RunEventHub } from './run-event-hub.js';

const KEEPALIVE_MS = 15_000;

export function eventsRoutes(deps: { prisma: PrismaClient; hub: RunEventHub }): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/v1/runs/:id/events',
      tag: 'runs',
      summary: "A run's live events (text/event-stream): status, progress, metrics, checkpoint",
      request: { params: runIdParams },
      responses: {
        200: {
          description:
            'An event stream (`text/event-stream`): `event: status|progress|metrics|checkpoint`, `data:` JSON',
        },
      },
      async handle({ params }, res, req) {
        const runId = params.id;
        // Subscribed before the snapshot is read, so nothing between the two is missed.
        const buffered: string[] = [];
        let open = false;
        const send = (type: string, data: unknown): void => {
          const frame = `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
          if (open) res.write(frame);
          else buffered.push(frame);
        };
        const stop = await deps.hub.listen(runId, (event) => send(event.type, event));
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
        res.status(200).set({
          'Content-Type': 'text/event-stream; charset=utf-8',
          'Cache-Control': 'no-cache, no-transform',
          Connection: 'keep-alive',
          'X-Accel-Buffering': 'no',
        });
        res.flushHeaders();
        res.write(
          `event: status\ndata: ${JSON.stringify({ type: 'status', runId, status: run.status, progress: run.progress })}\n\n`,
        );
        open = true;
        for (const frame of buffered.splice(0)) res.write(frame);
        const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
        req.on('close', () => {
          clearInterval(keepalive);
          stop();
        });
      },
    }),
  ];
}
