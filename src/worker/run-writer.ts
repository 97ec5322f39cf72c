/**
 * The ordered queue of one attempt's Postgres writes (metrics, progress, checkpoints, status).
 *
 * Postgres restarts and network blips must not lose a metric or stop training: a write that
 * fails is retried, with backoff, until it succeeds, and the writes behind it wait (order
 * matters: a checkpoint row after the metrics before it, the final status last). Waiting metric
 * batches are merged and counted; past `maxBufferedPoints` the writer asks for training to pause
 * until the backlog halves, so memory stays bounded and nothing is dropped. A write that keeps
 * failing for `giveUpAfterMs` ends the attempt (the job is retried from its checkpoint); a lost
 * lease or a metric batch past the run's series cap ends it at once, since retrying cannot help.
 */
import type { Logger } from '../logger.js';
import type { MetricPointMessage } from './ipc.js';
import { LeaseLostError } from '../runs/lease.js';
import { SeriesLimitError } from '../db/metric-series.js';

/** Postgres allows 65,535 bind parameters per statement; a point takes five. */
const MAX_POINTS_PER_INSERT = 5000;
const FIRST_RETRY_MS = 200;
const MAX_RETRY_MS = 5000;

export interface RunWriterOptions {
  log: Logger;
  writeMetrics(points: MetricPointMessage[]): Promise<unknown>;
  maxBufferedPoints: number;
  giveUpAfterMs: number;
  /** Pause (true) or resume (false) the producer of metrics. */
  onBackpressure(paused: boolean): void;
  /** The attempt cannot go on (lease lost, or writes failed for too long). */
  onFatal(error: Error): void;
}

type Op =
  | { what: string; run: () => Promise<unknown> }
  /** A metric batch, which later points may join until it starts. */
  | { what: 'metrics'; points: MetricPointMessage[]; started: boolean };

export class WriteGaveUpError extends Error {
  constructor(what: string, cause: unknown) {
    super(
      `could not write ${what} to Postgres: ${cause instanceof Error ? cause.message : cause}`,
      {
        cause,
      },
    );
    this.name = 'WriteGaveUpError';
  }
}

export class RunWriter {
  private readonly ops: Op[] = [];
  private bufferedPoints = 0;
  private paused = false;
  private pumping: Promise<void> | undefined;
  private fatal: Error | undefined;
  private readonly idle: Array<{ resolve(): void; reject(error: Error): void }> = [];

  constructor(private readonly options: RunWriterOptions) {}

  /** Metric points waiting to be written. */
  get backlog(): number {
    return this.bufferedPoints;
  }

  /** Queues metric points; consecutive batches are written as one insert. */
  metrics(points: MetricPointMessage[]): void {
    if (this.fatal || points.length === 0) return;
    const last = this.ops[this.ops.length - 1];
    if (
      last &&
      'points' in last &&
      !last.started &&
      last.points.length + points.length <= MAX_POINTS_PER_INSERT
    ) {
      last.points.push(...points);
    } else {
      this.ops.push({ what: 'metrics', points: [...points], started: false });
    }
    this.bufferedPoints += points.length;
    if (!this.paused && this.bufferedPoints > this.options.maxBufferedPoints) {
      this.paused = true;
      this.options.log.warn(
        { backlog: this.bufferedPoints },
        'metric backlog full (Postgres unreachable?); pausing training',
      );
      this.options.onBackpressure(true);
    }
    this.pump();
  }

  /** Queues a write after everything queued so far. */
  push(what: string, run: () => Promise<unknown>): void {
    if (this.fatal) return;
    this.ops.push({ what, run });
    this.pump();
  }

  /** Resolves once every queued write is done; rejects if the attempt had to end. */
  drain(): Promise<void> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.ops.length === 0 && !this.pumping) return Promise.resolve();
    return new Promise((resolve, reject) => this.idle.push({ resolve, reject }));
  }

  private pump(): void {
    this.pumping ??= this.runAll().finally(() => {
      this.pumping = undefined;
      const waiters = this.idle.splice(0);
      for (const w of waiters) {
        if (this.fatal) w.reject(this.fatal);
        else w.resolve();
      }
    });
  }

  private async runAll(): Promise<void> {
    for (let op = this.ops[0]; op && !this.fatal; op = this.ops[0]) {
      let run: () => Promise<unknown>;
      if ('points' in op) {
        // From here on the batch is closed: new points start the next one.
        op.started = true;
        const points = op.points;
        run = () => this.options.writeMetrics(points);
      } else {
        run = op.run;
      }
      if (await this.runWithRetries(op.what, run)) {
        this.ops.shift();
        if ('points' in op) this.bufferedPoints -= op.points.length;
        if (this.paused && this.bufferedPoints <= this.options.maxBufferedPoints / 2) {
          this.paused = false;
          this.options.log.info(
            { backlog: this.bufferedPoints },
            'metric backlog drained; training resumes',
          );
          this.options.onBackpressure(false);
        }
      }
    }
  }

  /** True once the op is done; false after a fatal error (the queue is then abandoned). */
  private async runWithRetries(what: string, run: () => Promise<unknown>): Promise<boolean> {
    const { log } = this.options;
    let firstFailure: number | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        await run();
        if (firstFailure !== undefined)
          log.info(
            { what, afterMs: Date.now() - firstFailure, tries: attempt + 1 },
            'Postgres write succeeded again',
          );
        return true;
      } catch (error) {
        // Retrying cannot mend these: the lease is gone, or the run has all the series it may.
        if (error instanceof LeaseLostError || error instanceof SeriesLimitError)
          return this.fail(error);
        firstFailure ??= Date.now();
        if (Date.now() - firstFailure >= this.options.giveUpAfterMs)
          return this.fail(new WriteGaveUpError(what, error));
        // First failure, then every tenth: enough to see an outage without flooding the log.
        if (attempt % 10 === 0)
          log.warn(
            { err: error, what, tries: attempt + 1, backlog: this.bufferedPoints },
            'Postgres write failed; retrying',
          );
        const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** attempt);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private fail(error: Error): false {
    this.fatal = error;
    this.ops.length = 0;
    this.bufferedPoints = 0;
    if (this.paused) {
      this.paused = false;
      this.options.onBackpressure(false);
    }
    this.options.onFatal(error);
    return false;
  }
}
