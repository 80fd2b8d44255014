import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { Batcher, type Clock } from './batcher.js';
import { BadRequestError, CancelledError, QueueFullError, RequestTimeoutError, ShuttingDownError } from './errors.js';

/** Lets promise callbacks and the batcher's reactions to them run (no time passes on the fake clock). */
const flush = () => new Promise<void>((r) => setImmediate(r));

/** A clock the test moves by hand: timers fire in order of due time, then of creation. */
class FakeClock implements Clock {
  t = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  now() {
    return this.t;
  }
  setTimer(fn: () => void, ms: number) {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimer(h: unknown) {
    this.timers.delete(h as number);
  }
  async advance(ms: number) {
    const target = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= target && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await flush();
    }
    this.t = target;
    await flush();
  }
}

interface FakeBatch {
  inputs: number[];
  start: number;
  end?: number;
  ok?: boolean;
  resolve: (o: number[]) => void;
  reject: (e: unknown) => void;
}

/** A runner the test finishes by hand; its output for input x is 10 x. */
function fakeRunner(clock: FakeClock) {
  const batches: FakeBatch[] = [];
  const run = (inputs: number[]) => new Promise<number[]>((resolve, reject) => batches.push({ inputs, start: clock.now(), resolve, reject }));
  const current = () => batches.find((b) => b.end === undefined);
  const finish = async (ok: boolean) => {
    const b = current();
    if (!b) return;
    b.end = clock.now();
    b.ok = ok;
    if (ok) b.resolve(b.inputs.map((x) => 10 * x));
    else b.reject(new Error('runner failed'));
    await flush();
  };
  return { batches, run, current, finish };
}

type Event =
  | { kind: 'submit'; rows: number; key: 'a' | 'b'; abortable: boolean }
  | { kind: 'advance'; ms: number }
  | { kind: 'finish'; ok: boolean }
  | { kind: 'abort'; which: number };

interface Outcome {
  id: number;
  rows: number;
  key: string;
  arrival: number;
  queuedBefore: number;
  aborted: boolean;
  settledAt?: number;
  value?: number;
  error?: unknown;
}

const config = fc.record({
  maxBatch: fc.integer({ min: 1, max: 6 }),
  maxDelayMs: fc.integer({ min: 0, max: 20 }),
  maxQueue: fc.integer({ min: 1, max: 8 }),
  timeoutMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 60 })),
});

const event = (maxRows: number): fc.Arbitrary<Event> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('submit' as const), rows: fc.integer({ min: 1, max: maxRows + 1 }), key: fc.constantFrom('a' as const, 'b' as const), abortable: fc.boolean() }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 30 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('finish' as const), ok: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('abort' as const), which: fc.nat() }) },
  );

describe('Batcher invariants (fake clock, fake runner)', () => {
  test.prop([config.chain((c) => fc.tuple(fc.constant(c), fc.array(event(c.maxBatch), { maxLength: 60 })))], { numRuns: 150 })(
    'answers every request exactly once, batches <= maxBatch in FIFO order, and starts a due batch whenever the runner is idle',
    async ([c, events]) => {
      const clock = new FakeClock();
      const runner = fakeRunner(clock);
      const batcher = new Batcher<number, number>(runner.run, { name: 'm', ...c, clock });
      const outcomes: Outcome[] = [];
      const controllers: AbortController[] = [];
      const settledCount = new Map<number, number>();
      const submit = (e: Extract<Event, { kind: 'submit' }>) => {
        const id = outcomes.length;
        const ac = new AbortController();
        controllers.push(ac);
        const o: Outcome = { id, rows: e.rows, key: e.key, arrival: clock.now(), queuedBefore: batcher.queued, aborted: false };
        outcomes.push(o);
        const done = () => {
          o.settledAt = clock.now();
          settledCount.set(id, (settledCount.get(id) ?? 0) + 1);
        };
        batcher.submit(id, { rows: e.rows, key: e.key, signal: e.abortable ? ac.signal : undefined }).then(
          (v) => {
            o.value = v;
            done();
          },
          (err) => {
            o.error = err;
            done();
          },
        );
      };
      for (const e of events) {
        if (e.kind === 'submit') submit(e);
        else if (e.kind === 'advance') await clock.advance(e.ms);
        else if (e.kind === 'finish') await runner.finish(e.ok);
        else if (outcomes.length) {
          const o = outcomes[e.which % outcomes.length]!;
          o.aborted = true;
          controllers[o.id]!.abort();
        }
        await flush();
      }
      // Drain: finish running batches and let time pass until every request has its answer.
      for (let i = 0; i < 500 && (batcher.queued > 0 || batcher.busy); i++) {
        if (runner.current()) await runner.finish(true);
        else await clock.advance(c.maxDelayMs + 1);
      }
      await flush();

      // Every request is answered exactly once.
      for (const o of outcomes) expect(settledCount.get(o.id), `request ${o.id}`).toBe(1);
      // Batches: size, key, no overlap, FIFO.
      const seen = new Map<number, FakeBatch>();
      let prevEnd = -Infinity;
      for (const b of runner.batches) {
        const rows = b.inputs.reduce((s, id) => s + outcomes[id]!.rows, 0);
        expect(rows).toBeLessThanOrEqual(c.maxBatch);
        expect(new Set(b.inputs.map((id) => outcomes[id]!.key)).size).toBe(1);
        expect(b.start).toBeGreaterThanOrEqual(prevEnd);
        prevEnd = b.end!;
        for (const id of b.inputs) {
          expect(seen.has(id), `request ${id} ran twice`).toBe(false);
          seen.set(id, b);
        }
      }
      const order = runner.batches.flatMap((b) => b.inputs);
      expect(order).toEqual([...order].sort((x, y) => x - y));
      // Waiting: past its deadline a queued request only waits while the runner is busy.
      const busy = runner.batches.map((b) => [b.start, b.end!] as const);
      for (const [id, b] of seen) {
        const due = outcomes[id]!.arrival + c.maxDelayMs;
        let covered = due;
        for (const [s, e] of busy) if (s <= covered && e >= covered) covered = e;
        if (b.start > due) expect(covered, `request ${id} waited past ${due} with the runner idle`).toBeGreaterThanOrEqual(b.start);
      }
      // Each answer is the right one, for the right reason.
      for (const o of outcomes) {
        const b = seen.get(o.id);
        if (o.error === undefined) {
          expect(o.value).toBe(10 * o.id);
          expect(b?.ok).toBe(true);
          continue;
        }
        const err = o.error;
        if (err instanceof BadRequestError) expect(o.rows).toBeGreaterThan(c.maxBatch);
        else if (err instanceof QueueFullError) {
          expect(o.queuedBefore).toBeGreaterThanOrEqual(c.maxQueue);
          expect(b).toBeUndefined();
        } else if (err instanceof RequestTimeoutError) {
          expect(c.timeoutMs).toBeGreaterThan(0);
          expect(o.settledAt! - o.arrival).toBe(c.timeoutMs);
          expect(err.queued).toBe(b === undefined);
        } else if (err instanceof CancelledError) expect(o.aborted).toBe(true);
        else {
          expect((err as Error).message).toBe('runner failed');
          expect(b?.ok).toBe(false);
        }
        if (!(err instanceof QueueFullError) && !(err instanceof BadRequestError)) expect(o.queuedBefore < c.maxQueue || o.rows > c.maxBatch).toBe(true);
      }
    },
  );
});

describe('Batcher behaviour', () => {
  it('coalesces requests that arrive within maxDelay into one batch, started at the oldest one’s deadline', async () => {
    const clock = new FakeClock();
    const runner = fakeRunner(clock);
    const b = new Batcher<number, number>(runner.run, { name: 'm', maxBatch: 8, maxDelayMs: 5, maxQueue: 16, clock });
    const answers = [b.submit(1), b.submit(2)];
    await clock.advance(2);
    answers.push(b.submit(3));
    await clock.advance(2);
    expect(runner.batches).toHaveLength(0);
    await clock.advance(1);
    expect(runner.batches.map((x) => [x.inputs, x.start])).toEqual([[[1, 2, 3], 5]]);
    await runner.finish(true);
    expect(await Promise.all(answers)).toEqual([10, 20, 30]);
  });

  it('starts a full batch at once, and the rest after it', async () => {
    const clock = new FakeClock();
    const runner = fakeRunner(clock);
    const b = new Batcher<number, number>(runner.run, { name: 'm', maxBatch: 4, maxDelayMs: 100, maxQueue: 16, clock });
    const answers = [b.submit(1, { rows: 2 }), b.submit(2, { rows: 2 }), b.submit(3, { rows: 3 })];
    await flush();
    expect(runner.batches.map((x) => x.inputs)).toEqual([[1, 2]]);
    await clock.advance(150);
    await runner.finish(true);
    // Request 3 waited past its deadline while the runner was busy: it starts as soon as the runner is free.
    expect(runner.batches.map((x) => [x.inputs, x.start])).toEqual([[[1, 2], 0], [[3], 150]]);
    await runner.finish(true);
    expect(await Promise.all(answers)).toEqual([10, 20, 30]);
  });

  it('refuses work beyond the queue with Retry-After, and refuses oversized requests naming --max-batch', async () => {
    const clock = new FakeClock();
    const runner = fakeRunner(clock);
    const b = new Batcher<number, number>(runner.run, { name: 'm', maxBatch: 2, maxDelayMs: 10, maxQueue: 2, clock });
    // [1, 2] fill a batch and start at once; 3 and 4 fill the queue; 5 is refused.
    const ok = [b.submit(1), b.submit(2), b.submit(3), b.submit(4)];
    await flush();
    expect(b.queued).toBe(2);
    const full = await b.submit(5).catch((e) => e);
    expect(full).toBeInstanceOf(QueueFullError);
    expect(full.status).toBe(503);
    expect(Number(full.headers['Retry-After'])).toBeGreaterThanOrEqual(1);
    const big = await b.submit(6, { rows: 3 }).catch((e) => e);
    expect(big).toBeInstanceOf(BadRequestError);
    expect(big.message).toMatch(/--max-batch 2/);
    await runner.finish(true);
    await runner.finish(true);
    expect(await Promise.all(ok)).toEqual([10, 20, 30, 40]);
  });

  it('close() runs what is queued without waiting for the delay, refuses new work, and resolves when idle', async () => {
    const clock = new FakeClock();
    const runner = fakeRunner(clock);
    const b = new Batcher<number, number>(runner.run, { name: 'm', maxBatch: 8, maxDelayMs: 1000, maxQueue: 8, clock });
    const a = b.submit(1);
    let closed = false;
    const closing = b.close().then(() => (closed = true));
    await flush();
    expect(runner.batches.map((x) => x.start)).toEqual([0]);
    expect(await b.submit(2).catch((e) => e)).toBeInstanceOf(ShuttingDownError);
    expect(closed).toBe(false);
    await runner.finish(true);
    await closing;
    expect(await a).toBe(10);
  });

  it('a runner that throws synchronously or returns the wrong count fails only its batch', async () => {
    const clock = new FakeClock();
    let calls = 0;
    const b = new Batcher<number, number>(
      (xs) => {
        calls++;
        if (calls === 1) throw new Error('boom');
        if (calls === 2) return Promise.resolve([1]);
        return Promise.resolve(xs.map((x) => x + 1));
      },
      { name: 'm', maxBatch: 2, maxDelayMs: 5, maxQueue: 8, clock },
    );
    const first = b.submit(1).catch((e) => (e as Error).message);
    await clock.advance(5);
    expect(await first).toBe('boom');
    const two = Promise.allSettled([b.submit(1), b.submit(2)]);
    await clock.advance(5);
    expect((await two).map((r) => r.status)).toEqual(['rejected', 'rejected']);
    const last = b.submit(5);
    await clock.advance(5);
    expect(await last).toBe(6);
  });
});
