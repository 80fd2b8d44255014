/**
 * Load and fault tests on loopback, bounded in request count (never in time, and never asserting on latency):
 * concurrent clients below and above capacity (autocannon), clients that go away, malformed and huge bodies,
 * deadlines, and a graceful close with work in flight.
 */
import { connect } from 'node:net';
import autocannon, { type Options, type Result } from 'autocannon';
import { afterEach, describe, expect, it } from 'vitest';
import { randomRows, startGatedServer, startShapesServer, stopServer, type TestServer, until } from '../test/helpers.js';
import { encodeBinaryInferRequest } from './oip.js';

const cannon = (o: Options) => new Promise<Result>((resolve, reject) => autocannon(o, (err, r) => (err ? reject(err) : resolve(r))));

const binaryRequest = (seed = 1) => encodeBinaryInferRequest({ name: 'input', shape: [1, 3, 48, 48], data: randomRows(1, seed) }, { binaryOutput: true });

let t: TestServer | undefined;
afterEach(async () => {
  await stopServer(t);
  t = undefined;
});

function metric(text: string, line: RegExp): number {
  return Number(line.exec(text)?.[1] ?? NaN);
}

describe('load', () => {
  it('16 concurrent clients below capacity: every request answered 200, and requests share batches', async () => {
    t = await startShapesServer({ maxBatch: 16, maxDelayMs: 5, maxQueue: 64 });
    const { body, headers } = binaryRequest();
    const r = await cannon({ url: `${t.url}/v2/models/shapes/infer`, connections: 16, amount: 400, timeout: 60, method: 'POST', headers, body });
    expect({ ok: r.statusCodeStats['200']?.count, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts }).toEqual({ ok: 400, non2xx: 0, errors: 0, timeouts: 0 });
    const text = await (await fetch(`${t.url}/metrics`)).text();
    const rows = metric(text, /^effnet_batch_size_sum\{model="shapes"\} (\d+)$/m);
    const batches = metric(text, /^effnet_batch_size_count\{model="shapes"\} (\d+)$/m);
    expect(rows).toBe(400);
    expect(batches).toBeLessThan(400);
  });

  it('above capacity: the overflow gets 503 with Retry-After, never an error or a timeout, and the server recovers', async () => {
    // A slow model (each batch waits 20 ms first), one row per batch and a queue of 2: 24 clients overflow it.
    t = await startShapesServer({
      maxBatch: 1,
      maxQueue: 2,
      wrap: (inner) => ({ ...inner, device: inner.device, notes: inner.notes, run: async (x) => (await new Promise((r) => setTimeout(r, 20)), inner.run(x)), dispose: () => inner.dispose() }),
    });
    const { body, headers } = binaryRequest();
    const retryAfter: string[] = [];
    const r = await cannon({
      url: `${t.url}/v2/models/shapes/infer`,
      connections: 24,
      amount: 240,
      timeout: 60,
      requests: [{ method: 'POST', headers, body, onResponse: (status, _b, _c, h) => status === 503 && retryAfter.push(h['retry-after'] ?? h['Retry-After'] ?? '') }],
    });
    const codes = Object.keys(r.statusCodeStats).sort();
    expect(codes).toEqual(['200', '503']);
    expect({ errors: r.errors, timeouts: r.timeouts }).toEqual({ errors: 0, timeouts: 0 });
    expect(r.statusCodeStats['200']!.count + r.statusCodeStats['503']!.count).toBe(240);
    expect(retryAfter).toHaveLength(r.statusCodeStats['503']!.count);
    expect(retryAfter.every((v) => Number.isInteger(Number(v)) && Number(v) >= 1)).toBe(true);
    const after = await fetch(`${t.url}/v2/models/shapes/infer`, { method: 'POST', body, headers });
    expect(after.status).toBe(200);
  });
});

describe('faults', () => {
  it('clients that disconnect mid-body or while queued are dropped; queued ones never run; the server keeps serving', async () => {
    const g = await startGatedServer({
      maxBatch: 1,
      maxDelayMs: 0,
      maxQueue: 16,
    });
    t = g.t;
    const gate = g.gate;
    const port = new URL(t.url).port;
    const { body, headers } = binaryRequest();
    const rawRequest = (bytes: Buffer) =>
      `POST /v2/models/shapes/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nInference-Header-Content-Length: ${headers['Inference-Header-Content-Length']}\r\nContent-Length: ${body.length}\r\n\r\n` +
      bytes.toString('latin1');
    // One request holds the runner.
    const first = fetch(`${t.url}/v2/models/shapes/infer`, { method: 'POST', body, headers });
    await until(() => gate.state.started === 1);
    // Three clients send whole requests, get queued, and hang up; two hang up half-way through their body.
    const sockets = [0, 1, 2, 3, 4].map(() => connect(Number(port), '127.0.0.1'));
    await Promise.all(sockets.map((s) => new Promise((r) => s.once('connect', r))));
    sockets.forEach((s, i) => s.write(rawRequest(i < 3 ? body : body.subarray(0, body.length >> 1)), 'latin1'));
    await until(() => t!.model.batcher.queued === 3);
    for (const s of sockets) s.destroy();
    await until(() => t!.model.batcher.queued === 0 && t!.logs.filter((l) => l.status === 499).length === 5);
    gate.release();
    expect((await first).status).toBe(200);
    // Only the first request ran: the others left the queue (or never got there) when their clients went away.
    expect(gate.state.batches).toEqual([1]);
    const after = await fetch(`${t.url}/v2/models/shapes/infer`, { method: 'POST', body, headers });
    expect(after.status).toBe(200);
    expect(gate.state.batches).toEqual([1, 1]);
  });

  it('bursts of malformed JSON, wrong shapes and huge bodies are 4xx and the server keeps serving', async () => {
    t = await startShapesServer({ maxBodyBytes: 1024 * 1024 });
    const url = `${t.url}/v2/models/shapes/infer`;
    const bad = [
      { body: '{"inputs": [{"name": "input", "shape": [1, 3, 48, 48]', status: 400 },
      { body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 47, 48], datatype: 'FP32', data: [] }] }), status: 400 },
      { body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, 48, 48], datatype: 'INT8', data: [] }] }), status: 400 },
      { body: Buffer.alloc(2 * 1024 * 1024, 0x20), status: 413 },
    ];
    for (const b of bad) {
      const r = await cannon({ url, connections: 8, amount: 40, timeout: 60, method: 'POST', body: b.body, headers: { 'Content-Type': 'application/json' } });
      expect({ codes: Object.keys(r.statusCodeStats), timeouts: r.timeouts }).toEqual({ codes: [String(b.status)], timeouts: 0 });
    }
    const { body, headers } = binaryRequest();
    const r = await cannon({ url, connections: 8, amount: 80, timeout: 60, method: 'POST', headers, body });
    expect({ non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts }).toEqual({ non2xx: 0, errors: 0, timeouts: 0 });
  });

  it('deadlines: a request still queued at --timeout-ms is 503 + Retry-After, one whose batch is running is 504', async () => {
    const g = await startGatedServer({
      maxBatch: 1,
      maxDelayMs: 0,
      timeoutMs: 200,
    });
    t = g.t;
    const gate = g.gate;
    const { body, headers } = binaryRequest();
    const send = () => fetch(`${t!.url}/v2/models/shapes/infer`, { method: 'POST', body, headers });
    const running = send();
    await until(() => gate.state.started === 1);
    const queued = send();
    const [a, b] = await Promise.all([running, queued]);
    expect(a.status).toBe(504);
    expect(((await a.json()) as { error: string }).error).toMatch(/did not finish within 200 ms/);
    expect(b.status).toBe(503);
    expect(Number(b.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await b.json()) as { error: string }).error).toMatch(/waited 200 ms in the queue/);
    gate.release();
    await until(() => !t!.model.batcher.busy);
    expect((await send()).status).toBe(200);
  });

  it('close() answers what is running and queued, refuses new connections, then resolves', async () => {
    const g = await startGatedServer({
      maxBatch: 1,
      maxDelayMs: 0,
    });
    t = g.t;
    const gate = g.gate;
    const { body, headers } = binaryRequest();
    const url = t.url;
    const pending = [0, 1, 2].map(() => fetch(`${url}/v2/models/shapes/infer`, { method: 'POST', body, headers }));
    await until(() => gate.state.started === 1 && t!.model.batcher.queued === 2);
    let closed = false;
    const closing = t.server.close().then(() => (closed = true));
    await until(() => !t!.server.ready);
    await expect(fetch(`${url}/v2/health/live`)).rejects.toThrow();
    expect(closed).toBe(false);
    gate.release();
    const statuses = await Promise.all(pending.map(async (p) => (await p).status));
    expect(statuses).toEqual([200, 200, 200]);
    await closing;
    expect(gate.state.batches).toEqual([1, 1, 1]);
  });
});
