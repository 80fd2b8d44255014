/**
 * Test fixtures: a real node:http server on 127.0.0.1 (started and stopped by each test file, every request loop
 * bounded), generated weight files, and temporary cache directories. Nothing here reaches beyond loopback.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildEfficientNet,
  type EfficientNetSpec,
  type Graph,
  randomWeights,
  seededNormal,
  serializeSafetensors,
  specFor,
  type TensorMap,
  type WeightFamily,
} from '@effnet/core';

/** A promise and its resolver (Promise.withResolvers, which ES2022's lib does not type). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const made: string[] = [];

/** A fresh temporary directory, removed by removeTempDirs (each test file calls it in afterAll). */
export function tempDir(prefix = 'effnet-zoo-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export interface Hit {
  path: string;
  range?: string;
  auth?: string;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, hit: number) => void;

/** A loopback HTTP server with routes and a log of every request. */
export class TestServer {
  readonly hits: Hit[] = [];
  private readonly routes = new Map<string, Handler>();
  private readonly counts = new Map<string, number>();
  private server?: http.Server;
  base = '';

  route(path: string, handler: Handler): this {
    this.routes.set(path, handler);
    return this;
  }

  count(path: string): number {
    return this.hits.filter((h) => h.path === path).length;
  }

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      this.hits.push({ path, range: req.headers.range, auth: req.headers.authorization });
      const n = (this.counts.get(path) ?? 0) + 1;
      this.counts.set(path, n);
      const h = this.routes.get(path);
      if (!h) {
        res.writeHead(404).end('not found');
        return;
      }
      h(req, res, n);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.base;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }
}

export interface SendOptions {
  etag?: string;
  /** Cut the connection after this many bytes of the body (on the hits listed in cutOnHits, default the first). */
  cutAt?: number;
  cutOnHits?: number[];
  /** Send in chunks of this size with a pause between them (keeps a transfer in flight). */
  chunk?: number;
  delayMs?: number;
  /** Ignore Range requests (answer 200 with the whole body). */
  noRange?: boolean;
  /** Send the first 1 KiB, then hold the rest until this settles (keeps a transfer in flight for as long as a test needs). */
  gate?: Promise<unknown>;
}

/** Serves `body` with Range support, optionally cutting the connection part-way. */
export function sendBody(req: IncomingMessage, res: ServerResponse, body: Uint8Array, hit: number, o: SendOptions = {}): void {
  let start = 0;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
  if (o.etag) headers.etag = `"${o.etag}"`;
  if (m && !o.noRange) {
    start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(206, { ...headers, 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
  } else res.writeHead(200, { ...headers, 'content-length': body.length });
  const part = Buffer.from(body.buffer, body.byteOffset + start, body.length - start);
  const cutHere = o.cutAt !== undefined && (o.cutOnHits ?? [1]).includes(hit);
  if (cutHere) {
    res.write(part.subarray(0, Math.max(0, o.cutAt! - start)), () => {
      // Destroy the socket once the bytes are flushed: the client sees a premature close.
      setTimeout(() => res.socket?.destroy(), 20);
    });
    return;
  }
  if (o.gate) {
    res.write(part.subarray(0, 1024));
    void o.gate.finally(() => res.end(part.subarray(1024)));
    return;
  }
  if (!o.chunk) {
    res.end(part);
    return;
  }
  let off = 0;
  const step = () => {
    if (res.destroyed) return;
    if (off >= part.length) return void res.end();
    res.write(part.subarray(off, off + o.chunk!));
    off += o.chunk!;
    setTimeout(step, o.delayMs ?? 5);
  };
  step();
}

/** A spec and graph small enough for fast tests: B0 at 32x32 with 10 classes. */
export function smallModel(variant = 'efficientnet_b0', family?: WeightFamily, numClasses = 10): { spec: EfficientNetSpec; graph: Graph } {
  const spec = specFor(variant, family ? { family, resolution: 32 } : { resolution: 32 });
  return { spec, graph: buildEfficientNet(spec, { numClasses, inputResolution: 32 }) };
}

/** Random weights with BN statistics away from identity, so that conventions (eps, padding) change the outputs. */
export function testWeights(graph: Graph, seed = 1): TensorMap {
  const w = randomWeights(graph, seed);
  const n = seededNormal(seed + 7);
  for (const [name, t] of w) {
    const d = t.data as Float32Array;
    if (name.endsWith('running_var')) for (let i = 0; i < d.length; i++) d[i] = 0.5 + Math.abs(n());
    else if (name.endsWith('running_mean')) for (let i = 0; i < d.length; i++) d[i] = 0.1 * n();
    else if (/bn\d\.bias$/.test(name)) for (let i = 0; i < d.length; i++) d[i] = 0.1 * n();
  }
  return w;
}

export function safetensorsBytes(w: TensorMap): Uint8Array {
  return serializeSafetensors(w);
}

export { randomInput } from '../../../testing/graphs.js';

/** Bytes that are not a model (for pull tests that never parse the file). */
export function blob(size: number, seed = 3): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Environment for a test: nothing from the real one that could change behaviour (EFFNET_*, HF_*, XDG). */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return { HOME: tmpdir(), ...extra };
}
