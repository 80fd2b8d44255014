/**
 * Dynamic batching and queueing, in one place (backends never batch or queue): requests for one model wait in a
 * bounded FIFO queue and are coalesced into batches of at most `maxBatch` rows. A batch starts as soon as the runner
 * is idle and either the rows at the head of the queue fill a batch or the oldest request has waited `maxDelayMs`.
 * One batch runs at a time per model.
 *
 * Every submitted request is answered exactly once: with its own slice of its batch's result, or with an error
 * (queue full, deadline passed, client gone, runner failed, shutting down). A request that is cancelled or times out
 * while queued leaves the queue and never runs; one cancelled while its batch runs has its result discarded.
 *
 * Time comes from a Clock, so that tests drive it by hand.
 */
import { InvalidSpecError } from '@effnet/core';
import { BadRequestError, CancelledError, QueueFullError, RequestTimeoutError, ShuttingDownError } from './errors.js';

/** Time and timers (milliseconds). */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface BatcherOptions {
  /** Named in errors. */
  name: string;
  /** Rows per batch (a request may carry several rows). */
  maxBatch: number;
  /** How long the oldest queued request may wait for others to join its batch while the runner is idle. */
  maxDelayMs: number;
  /** Requests that may wait (not counting the running batch); more are refused with QueueFullError. */
  maxQueue: number;
  /** Deadline of each request from its submission, queue and run together (0: none). */
  timeoutMs?: number;
  clock?: Clock;
  /** Called when a batch ends (for metrics). */
  onBatch?: (b: { rows: number; requests: number; ms: number; ok: boolean }) => void;
}

export interface SubmitOptions {
  /** Rows this request adds to a batch (default 1). */
  rows?: number;
  /** Only requests with equal keys share a batch (e.g. an input shape); default ''. */
  key?: string;
  /** Aborting removes a queued request, or discards the result of a running one; either way it rejects with CancelledError. */
  signal?: AbortSignal;
}

interface Pending<I, O> {
  input: I;
  rows: number;
  key: string;
  arrival: number;
  state: 'queued' | 'running' | 'done';
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
  deadline?: unknown;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/** Runs a batch: one output per input, in order. */
export type RunBatch<I, O> = (inputs: I[]) => Promise<O[]>;

export class Batcher<I, O> {
  private readonly queue: Pending<I, O>[] = [];
  private running = false;
  private timer: unknown = undefined;
  private timerAt = Number.NaN;
  private closing = false;
  private idle: (() => void)[] = [];
  private readonly clock: Clock;
  /** Exponential moving average of batch durations (ms), for Retry-After. */
  private batchMs = 0;

  constructor(
    private readonly run: RunBatch<I, O>,
    readonly options: BatcherOptions,
  ) {
    const int = (field: string, v: number, min: number) => {
      if (!Number.isInteger(v) || v < min) throw new InvalidSpecError(field, v, `an integer >= ${min}`);
    };
    int('maxBatch', options.maxBatch, 1);
    int('maxQueue', options.maxQueue, 1);
    if (!(options.maxDelayMs >= 0 && Number.isFinite(options.maxDelayMs))) throw new InvalidSpecError('maxDelayMs', options.maxDelayMs, 'a number >= 0');
    if (options.timeoutMs !== undefined && !(options.timeoutMs >= 0 && Number.isFinite(options.timeoutMs))) throw new InvalidSpecError('timeoutMs', options.timeoutMs, 'a number >= 0');
    this.clock = options.clock ?? systemClock;
  }

  /** Requests waiting (not running). */
  get queued(): number {
    return this.queue.length;
  }

  /** Whether a batch is running. */
  get busy(): boolean {
    return this.running;
  }

  /** Seconds a refused client should wait: the queue's rows at the recent batch rate, at least 1. */
  retryAfterSeconds(): number {
    const rows = this.queue.reduce((s, p) => s + p.rows, 0);
    const batches = Math.ceil(rows / this.options.maxBatch) + 1;
    return Math.max(1, Math.ceil((batches * this.batchMs) / 1000));
  }

  /** Queues one request; resolves with its output, or rejects with a ServeError. */
  submit(input: I, o: SubmitOptions = {}): Promise<O> {
    const rows = o.rows ?? 1;
    const { name, maxBatch, maxQueue } = this.options;
    if (this.closing) return Promise.reject(new ShuttingDownError());
    if (!Number.isInteger(rows) || rows < 1) return Promise.reject(new BadRequestError(`model "${name}": a request must carry at least one row, got ${rows}`));
    if (rows > maxBatch)
      return Promise.reject(new BadRequestError(`model "${name}": the request has ${rows} rows (batch size), more than this server's --max-batch ${maxBatch}; split it into requests of at most ${maxBatch} rows`));
    if (this.queue.length >= maxQueue) return Promise.reject(new QueueFullError(name, maxQueue, this.retryAfterSeconds()));
    if (o.signal?.aborted) return Promise.reject(new CancelledError(name));
    return new Promise<O>((resolve, reject) => {
      const p: Pending<I, O> = { input, rows, key: o.key ?? '', arrival: this.clock.now(), state: 'queued', resolve, reject, signal: o.signal };
      const timeoutMs = this.options.timeoutMs;
      if (timeoutMs) p.deadline = this.clock.setTimer(() => this.expire(p, timeoutMs), timeoutMs);
      if (o.signal) {
        p.onAbort = () => this.cancel(p);
        o.signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.queue.push(p);
      this.pump();
    });
  }

  /**
   * Stops taking requests (new ones get ShuttingDownError), runs everything queued without waiting for more to join,
   * and resolves once nothing is queued or running.
   */
  close(): Promise<void> {
    this.closing = true;
    this.pump();
    return this.whenIdle();
  }

  /** Resolves when nothing is queued or running. */
  whenIdle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private settle(p: Pending<I, O>, f: () => void): void {
    if (p.state === 'done') return;
    p.state = 'done';
    if (p.deadline !== undefined) this.clock.clearTimer(p.deadline);
    if (p.onAbort) p.signal?.removeEventListener('abort', p.onAbort);
    f();
  }

  private remove(p: Pending<I, O>): void {
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
  }

  private expire(p: Pending<I, O>, timeoutMs: number): void {
    if (p.state === 'done') return;
    const queued = p.state === 'queued';
    if (queued) this.remove(p);
    this.settle(p, () => p.reject(new RequestTimeoutError(this.options.name, timeoutMs, queued, this.retryAfterSeconds())));
    if (queued) this.pump();
  }

  private cancel(p: Pending<I, O>): void {
    if (p.state === 'done') return;
    const queued = p.state === 'queued';
    if (queued) this.remove(p);
    this.settle(p, () => p.reject(new CancelledError(this.options.name)));
    if (queued) this.pump();
  }

  /** Rows of the requests that would form the next batch, and whether it can still grow. */
  private nextBatch(): { take: number; full: boolean } {
    const { maxBatch } = this.options;
    const key = this.queue[0]!.key;
    let rows = 0;
    let take = 0;
    while (take < this.queue.length) {
      const q = this.queue[take]!;
      // The batch cannot grow past a request of another shape or one that does not fit: FIFO, no overtaking.
      if (q.key !== key || rows + q.rows > maxBatch) return { take, full: true };
      rows += q.rows;
      take++;
    }
    return { take, full: rows === maxBatch };
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    this.timerAt = Number.NaN;
  }

  /** Starts the next batch if it is due, or arms the timer for when it will be. */
  private pump(): void {
    if (this.running) return;
    if (this.queue.length === 0) {
      this.clearTimer();
      const waiters = this.idle;
      this.idle = [];
      for (const w of waiters) w();
      return;
    }
    const due = this.queue[0]!.arrival + this.options.maxDelayMs;
    const now = this.clock.now();
    const { take, full } = this.nextBatch();
    if (full || this.closing || now >= due) {
      this.clearTimer();
      this.start(take);
    } else if (this.timerAt !== due) {
      this.clearTimer();
      this.timerAt = due;
      this.timer = this.clock.setTimer(() => {
        this.timer = undefined;
        this.timerAt = Number.NaN;
        this.pump();
      }, due - now);
    }
  }

  private start(take: number): void {
    const batch = this.queue.splice(0, take);
    for (const p of batch) p.state = 'running';
    this.running = true;
    const started = this.clock.now();
    const rows = batch.reduce((s, p) => s + p.rows, 0);
    let result: Promise<O[]>;
    try {
      result = this.run(batch.map((p) => p.input));
    } catch (e) {
      result = Promise.reject(e);
    }
    result
      .then(
        (outs) => {
          if (!Array.isArray(outs) || outs.length !== batch.length) throw new Error(`the batch runner returned ${Array.isArray(outs) ? outs.length : typeof outs} results for ${batch.length} requests`);
          batch.forEach((p, i) => this.settle(p, () => p.resolve(outs[i]!)));
          return true;
        },
        (e) => {
          for (const p of batch) this.settle(p, () => p.reject(e));
          return false;
        },
      )
      .catch((e) => {
        for (const p of batch) this.settle(p, () => p.reject(e));
        return false;
      })
      .then((ok) => {
        const ms = this.clock.now() - started;
        this.batchMs = this.batchMs === 0 ? ms : 0.8 * this.batchMs + 0.2 * ms;
        this.running = false;
        try {
          this.options.onBatch?.({ rows, requests: batch.length, ms, ok });
        } finally {
          this.pump();
        }
      });
  }
}
