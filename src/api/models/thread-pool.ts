/**
 * A bounded pool of worker threads for CPU-heavy work the API must not do on its event loop
 * (decoding images, running models). Each thread does one piece of work at a time; work that
 * finds every thread busy waits in a queue of at most `queueLength`, and work past that is
 * refused at once ({@link ThreadPoolFullError}) rather than piling up. Threads start on first
 * use. A thread that dies (an uncaught error, running out of memory) fails only the request it
 * was serving ({@link ThreadCrashedError}) and is replaced by a fresh one on next use; the API
 * process lives on.
 *
 * The messages: the pool posts `{ id, body }` and the thread answers `{ id, body }` or
 * `{ id, error }` ({@link answerRequests} is the thread's half).
 */
import { parentPort, type Transferable, type Worker } from 'node:worker_threads';

/** Every thread is busy and `queueLength` requests already wait. */
export class ThreadPoolFullError extends Error {
  override name = 'ThreadPoolFullError';
  constructor(
    message: string,
    /** A guess at when a place frees up: the queue's length times the average work. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** The thread serving the request stopped before answering (it is replaced on next use). */
export class ThreadCrashedError extends Error {
  override name = 'ThreadCrashedError';
}

/** The pool was closed (the API is shutting down) before the work could finish. */
export class ThreadPoolClosedError extends Error {
  override name = 'ThreadPoolClosedError';
}

/** The thread answered with an error it did not expect (a bug: its message, never sent on). */
export class ThreadRequestError extends Error {
  override name = 'ThreadRequestError';
}

export interface PoolThread {
  /** Distinct for every thread the pool starts: a replacement gets a new one. */
  readonly id: number;
  /** Posts `body` and resolves with the thread's answer. */
  request<R>(body: unknown, transfer?: readonly Transferable[]): Promise<R>;
}

export interface ThreadPoolOptions {
  /** Starts one thread (a `Worker` whose entry calls {@link answerRequests}). */
  start(): Worker;
  /** Threads at most. */
  size: number;
  /** Requests that may wait for a thread; past it, refused. */
  queueLength: number;
  /** Says, in a refusal, which settings bound the pool. */
  describeLimit: (size: number, queueLength: number) => string;
  /** Told when a thread dies (to log it, forget what it held). */
  onThreadExit?: (threadId: number, error: Error) => void;
}

export interface ThreadPool {
  /**
   * Runs `work` on a free thread (one that `prefer`s first), waiting for one if all are busy.
   * Rejects with {@link ThreadPoolFullError} when the queue is full, with `signal`'s reason
   * when it aborts while waiting.
   */
  use<T>(
    work: (thread: PoolThread) => Promise<T>,
    options?: { prefer?: (thread: PoolThread) => boolean; signal?: AbortSignal },
  ): Promise<T>;
  /** Threads running, busy, and requests waiting. */
  stats(): { threads: number; busy: number; waiting: number };
  /** Refuses new work, fails waiting and running requests, terminates every thread. */
  close(): Promise<void>;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** One live thread: its requests in flight, failed all at once if it dies. */
class LiveThread implements PoolThread {
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private stopped: Error | undefined;

  constructor(
    readonly id: number,
    readonly worker: Worker,
    onExit: (error: Error) => void,
  ) {
    worker.unref();
    worker.on('message', (reply: { id: number; body?: unknown; error?: string }) => {
      const entry = this.pending.get(reply.id);
      if (!entry) return;
      this.pending.delete(reply.id);
      if (reply.error !== undefined) entry.reject(new ThreadRequestError(reply.error));
      else entry.resolve(reply.body);
    });
    let reason: Error | undefined;
    worker.on('error', (error) => (reason ??= error));
    worker.on('exit', (code) => {
      const error =
        this.stopped ??
        new ThreadCrashedError(
          `a model thread stopped (${reason ? reason.message : `exit code ${code}`})`,
        );
      this.stopped = error;
      for (const entry of this.pending.values()) entry.reject(error);
      this.pending.clear();
      onExit(error);
    });
  }

  request<R>(body: unknown, transfer: readonly Transferable[] = []): Promise<R> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.postMessage({ id, body }, transfer);
    });
  }

  /** Stops the thread on purpose: what it was doing fails with `reason`. */
  stop(reason: Error): Promise<number> {
    this.stopped ??= reason;
    return this.worker.terminate();
  }
}

interface Slot {
  thread: LiveThread | undefined;
  busy: boolean;
}

interface Waiter {
  take(slot: Slot): void;
  fail(error: Error): void;
}

/** Waits for a slot until one frees up, the pool closes or `signal` aborts. */
function waitForSlot(waiting: Waiter[], signal: AbortSignal | undefined): Promise<Slot> {
  return new Promise<Slot>((resolve, reject) => {
    const onAbort = () => {
      waiting.splice(waiting.indexOf(waiter), 1);
      reject(signal?.reason as Error);
    };
    const waiter: Waiter = {
      take: (slot) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(slot);
      },
      fail: (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      },
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    waiting.push(waiter);
  });
}

class BoundedThreadPool implements ThreadPool {
  private readonly slots: Slot[];
  private readonly waiting: Waiter[] = [];
  private threadIds = 0;
  private closed = false;
  /** Moving average of one piece of work, for Retry-After. */
  private averageMs = 1000;

  constructor(private readonly options: ThreadPoolOptions) {
    this.slots = Array.from({ length: Math.max(1, options.size) }, () => ({
      thread: undefined,
      busy: false,
    }));
  }

  async use<T>(
    work: (thread: PoolThread) => Promise<T>,
    { prefer, signal }: { prefer?: (thread: PoolThread) => boolean; signal?: AbortSignal } = {},
  ): Promise<T> {
    const slot = await this.acquire(prefer, signal);
    const started = performance.now();
    try {
      return await work(this.threadOf(slot));
    } finally {
      this.averageMs = 0.8 * this.averageMs + 0.2 * (performance.now() - started);
      this.release(slot);
    }
  }

  stats() {
    return {
      threads: this.slots.filter((s) => s.thread).length,
      busy: this.slots.filter((s) => s.busy).length,
      waiting: this.waiting.length,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const reason = new ThreadPoolClosedError('the API is shutting down');
    for (const waiter of this.waiting.splice(0)) waiter.fail(reason);
    await Promise.all(this.slots.map((slot) => slot.thread?.stop(reason)));
  }

  /** The slot's thread, started (again, after a crash) when it has none. */
  private threadOf(slot: Slot): LiveThread {
    if (slot.thread) return slot.thread;
    const id = ++this.threadIds;
    const thread = new LiveThread(id, this.options.start(), (error) => {
      if (slot.thread === thread) slot.thread = undefined;
      if (!this.closed) this.options.onThreadExit?.(id, error);
    });
    slot.thread = thread;
    return thread;
  }

  private release(slot: Slot): void {
    slot.busy = false;
    const next = this.waiting.shift();
    if (next) {
      slot.busy = true;
      next.take(slot);
    }
  }

  /** A free slot (one whose thread `prefer`s first), a place in the queue, or a refusal. */
  private acquire(
    prefer: ((thread: PoolThread) => boolean) | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Slot> {
    if (this.closed) return Promise.reject(new ThreadPoolClosedError('the API is shutting down'));
    signal?.throwIfAborted();
    const free = this.slots.filter((slot) => !slot.busy);
    const slot = free.find((s) => s.thread !== undefined && prefer?.(s.thread) === true) ?? free[0];
    if (slot) {
      slot.busy = true;
      return Promise.resolve(slot);
    }
    if (this.waiting.length < this.options.queueLength) return waitForSlot(this.waiting, signal);
    const size = this.slots.length;
    const waited = (this.averageMs * (this.waiting.length + 1)) / size / 1000;
    const seconds = Math.min(60, Math.max(1, Math.ceil(waited)));
    const limit = this.options.describeLimit(size, this.options.queueLength);
    return Promise.reject(new ThreadPoolFullError(`${limit}; retry in ${seconds} s`, seconds));
  }
}

export function createThreadPool(options: ThreadPoolOptions): ThreadPool {
  return new BoundedThreadPool(options);
}

/**
 * The thread's half: answers each request the pool posts with `handle`'s result (and the
 * buffers it lists to transfer). An error `handle` throws is answered by its message.
 */
export function answerRequests(
  handle: (body: never) => Promise<{ body: unknown; transfer?: Transferable[] }>,
): void {
  const port = parentPort;
  if (!port) throw new Error('answerRequests must run in a worker thread');
  port.on('message', ({ id, body }: { id: number; body: never }) => {
    handle(body).then(
      (answer) => port.postMessage({ id, body: answer.body }, answer.transfer ?? []),
      (error: unknown) =>
        port.postMessage({ id, error: error instanceof Error ? error.message : String(error) }),
    );
  });
}
