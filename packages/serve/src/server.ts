/**
 * The HTTP server: the Open Inference Protocol REST endpoints (health, server and model metadata, infer with the
 * binary tensor data extension), task endpoints (classify), Prometheus metrics, one JSON log record per request, body
 * size limits, and a graceful close (stop accepting, answer everything in flight or queued, then stop).
 *
 * Routes:
 *   GET  /v2/health/live | /v2/health/ready | /v2 | /metrics
 *   GET  /v2/models/{name}[/versions/{v}] | .../ready
 *   POST /v2/models/{name}[/versions/{v}]/infer | .../classify | .../detect | .../segment
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InputError, InvalidSpecError } from '@effnet/core';
import { BadRequestError, CancelledError, MethodNotAllowedError, NotFoundError, PayloadTooLargeError, ServeError, ShuttingDownError } from './errors.js';
import { PROMETHEUS_CONTENT_TYPE, serverMetrics } from './metrics.js';
import type { ServedModel } from './model.js';
import { encodeInferResponse, HEADER_LENGTH, parseInferRequest } from './oip.js';
import { isTask, taskExtensions, taskHandler } from './tasks.js';
import { SERVE_DEFAULTS } from './defaults.js';

export { SERVE_DEFAULTS };

/** One line of the request log. */
export interface LogRecord {
  time: string;
  level: 'info' | 'warn' | 'error';
  msg: string;
  [k: string]: unknown;
}

export interface ServerOptions {
  host?: string;
  port?: number;
  /** Largest request body accepted (413 above). */
  maxBodyBytes?: number;
  /** Where log records go (the CLI writes them to stderr as JSON lines); none by default. */
  log?: (r: LogRecord) => void;
  /** Reported by GET /v2. */
  version?: string;
}

interface Reply {
  status: number;
  body: Buffer;
  headers: Record<string, string>;
  /** For the log and metrics. */
  model?: string;
  endpoint: string;
  error?: string;
}

const json = (status: number, value: unknown, headers: Record<string, string> = {}): Omit<Reply, 'endpoint'> => ({
  status,
  body: Buffer.from(JSON.stringify(value)),
  headers: { 'Content-Type': 'application/json', ...headers },
});

export class InferenceServer {
  readonly http: Server;
  readonly metrics: ReturnType<typeof serverMetrics>;
  private readonly models: Map<string, ServedModel>;
  private closing = false;
  private closed?: Promise<void>;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly maxBodyBytes: number;

  constructor(
    models: readonly ServedModel[],
    private readonly options: ServerOptions = {},
  ) {
    this.models = new Map();
    for (const m of models) {
      if (this.models.has(m.name)) throw new InvalidSpecError('models', m.name, 'distinct names: two models are served under this one; give one another with --model NAME=MODEL');
      this.models.set(m.name, m);
    }
    this.maxBodyBytes = options.maxBodyBytes ?? SERVE_DEFAULTS.maxBodyMb * 1024 * 1024;
    this.metrics = serverMetrics(() => [...this.models.values()].map((m) => ({ model: m.name, queued: m.batcher.queued, running: m.batcher.busy ? 1 : 0 })));
    this.http = createServer({ requestTimeout: 120_000, headersTimeout: 30_000, keepAliveTimeout: 5_000 }, (req, res) => {
      const done = this.handle(req, res).catch(() => undefined);
      this.inFlight.add(done);
      void done.finally(() => this.inFlight.delete(done));
    });
  }

  /** Records each batch a model ran (pass as the models' onBatch). */
  observeBatch(model: string, b: { rows: number; ms: number }): void {
    this.metrics.batchSize.observe({ model }, b.rows);
    this.metrics.batchDuration.observe({ model }, b.ms / 1000);
  }

  /** Starts listening; resolves with the address (port 0 picks a free one). */
  listen(): Promise<{ url: string; host: string; port: number }> {
    const host = this.options.host ?? SERVE_DEFAULTS.host;
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port ?? SERVE_DEFAULTS.port, host, () => {
        this.http.off('error', reject);
        const a = this.http.address() as AddressInfo;
        const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
        resolve({ url: `http://${h}:${a.port}`, host: a.address, port: a.port });
      });
    });
  }

  get ready(): boolean {
    return !this.closing;
  }

  /**
   * Graceful close: readiness turns 503, no new connections are accepted and new requests on open ones get 503;
   * everything already received or queued is answered; then the connections are closed.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      const stopped = new Promise<void>((r) => this.http.close(() => r()));
      this.http.closeIdleConnections();
      await Promise.all([...this.models.values()].map((m) => m.batcher.close()));
      while (this.inFlight.size) await Promise.all([...this.inFlight]);
      this.http.closeIdleConnections();
      // Connections still open now have nothing in flight: close them rather than wait for their keep-alive to end.
      const force = setTimeout(() => this.http.closeAllConnections(), 1000);
      await stopped;
      clearTimeout(force);
    })();
    return this.closed;
  }

  private log(r: Omit<LogRecord, 'time'>): void {
    this.options.log?.({ time: new Date().toISOString(), ...r } as LogRecord);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const abort = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    let reply: Reply;
    let bytesIn = 0;
    try {
      if (this.closing) throw new ShuttingDownError();
      reply = await this.route(req, abort.signal, (n) => (bytesIn = n));
    } catch (e) {
      reply = this.errorReply(e);
    }
    const url = req.url ?? '/';
    if (this.closing) reply.headers.Connection = 'close';
    const gone = abort.signal.aborted;
    if (!gone) {
      res.writeHead(reply.status, { ...reply.headers, 'Content-Length': String(reply.body.length) });
      res.end(reply.body);
      // Unread body (413, an early error): close rather than read what the client keeps sending.
      if (!req.complete) res.once('finish', () => req.socket.destroySoon());
    }
    const status = gone ? 499 : reply.status;
    const seconds = (performance.now() - started) / 1000;
    const model = reply.model ?? '';
    this.metrics.requests.inc({ model, endpoint: reply.endpoint, code: String(status) });
    if (reply.endpoint !== 'metrics' && !reply.endpoint.startsWith('health')) this.metrics.latency.observe({ model, endpoint: reply.endpoint }, seconds);
    this.log({
      level: status >= 500 && status !== 503 ? 'error' : status >= 400 ? 'warn' : 'info',
      msg: 'request',
      method: req.method,
      path: url.split('?')[0],
      ...(reply.model ? { model } : {}),
      endpoint: reply.endpoint,
      status,
      ms: Math.round(seconds * 1e4) / 10,
      bytes_in: bytesIn,
      bytes_out: gone ? 0 : reply.body.length,
      ...(reply.error ? { error: reply.error } : {}),
    });
  }

  private errorReply(e: unknown): Reply {
    const endpoint = 'unknown';
    if (e instanceof ServeError) return { ...json(e.status, { error: e.message }, e.headers), endpoint, error: e.message };
    // Inputs the runtime refuses (non-finite values) are the client's to fix.
    if (e instanceof InputError) return { ...json(400, { error: e.message }), endpoint, error: e.message };
    const message = e instanceof Error ? e.message : String(e);
    return { ...json(500, { error: `internal error: ${message.split('\n')[0]}` }), endpoint, error: message };
  }

  private async route(req: IncomingMessage, signal: AbortSignal, onBody: (n: number) => void): Promise<Reply> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let parts: string[];
    try {
      parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      throw new BadRequestError(`the path ${url.pathname} is not valid percent-encoding`);
    }
    const method = req.method ?? 'GET';
    const only = (allowed: string) => {
      if (method !== allowed && !(allowed === 'GET' && method === 'HEAD')) throw new MethodNotAllowedError(method, url.pathname, allowed === 'GET' ? ['GET', 'HEAD'] : [allowed]);
    };
    const withEndpoint = async (endpoint: string, model: string | undefined, f: () => Promise<Omit<Reply, 'endpoint'>> | Omit<Reply, 'endpoint'>): Promise<Reply> => {
      try {
        return { ...(await f()), endpoint, ...(model ? { model } : {}) };
      } catch (e) {
        return { ...this.errorReply(e), endpoint, ...(model ? { model } : {}) };
      }
    };

    if (parts.length === 1 && parts[0] === 'metrics')
      return withEndpoint('metrics', undefined, () => {
        only('GET');
        return { status: 200, body: Buffer.from(this.metrics.registry.expose()), headers: { 'Content-Type': PROMETHEUS_CONTENT_TYPE } };
      });
    if (parts[0] !== 'v2') throw new NotFoundError(`no such endpoint: ${url.pathname} (the API is under /v2: /v2/health/ready, /v2/models/{name}/infer, ...; metrics at /metrics)`);
    if (parts.length === 1)
      return withEndpoint('server_metadata', undefined, () => {
        only('GET');
        return json(200, { name: 'effnet', version: this.options.version ?? '0.0.0', extensions: ['binary_tensor_data', ...taskExtensions()] });
      });
    if (parts[1] === 'health' && parts.length === 3 && (parts[2] === 'live' || parts[2] === 'ready'))
      return withEndpoint(`health_${parts[2]}`, undefined, () => {
        only('GET');
        if (parts[2] === 'live') return json(200, { live: true });
        return this.ready ? json(200, { ready: true }) : json(503, { ready: false, error: 'the server is shutting down' });
      });
    if (parts[1] !== 'models' || parts.length < 3) throw new NotFoundError(`no such endpoint: ${url.pathname} (see /v2/models/{name} for a model's metadata)`);

    const name = parts[2]!;
    let rest = parts.slice(3);
    const model = this.models.get(name);
    if (!model) throw new NotFoundError(`no model "${name}" on this server; it serves ${[...this.models.keys()].map((n) => `"${n}"`).join(', ')}`);
    if (rest[0] === 'versions') {
      if (rest[1] !== model.version) return withEndpoint('model', name, () => Promise.reject(new NotFoundError(`model "${name}" has no version "${rest[1] ?? ''}"; it has version ${model.version}`)));
      rest = rest.slice(2);
    }
    const action = rest[0];
    if (rest.length > 1) throw new NotFoundError(`no such endpoint: ${url.pathname}`);
    if (action === undefined)
      return withEndpoint('model_metadata', name, () => {
        only('GET');
        return json(200, model.metadata());
      });
    if (action === 'ready')
      return withEndpoint('model_ready', name, () => {
        only('GET');
        return this.ready ? json(200, { name, ready: true }) : json(503, { name, ready: false, error: 'the server is shutting down' });
      });
    if (action === 'infer')
      return withEndpoint('infer', name, async () => {
        only('POST');
        const body = await this.readBody(req, onBody);
        const header = req.headers[HEADER_LENGTH];
        const request = parseInferRequest(body, Array.isArray(header) ? header[0] : header, model);
        const input = request.inputs[0]!;
        const out = await model.infer({ shape: input.shape, data: input.data }, signal);
        const { body: payload, headers } = encodeInferResponse({
          modelName: name,
          modelVersion: model.version,
          id: request.id,
          outputs: request.outputs.map((o) => ({ name: o.name, shape: out[o.name]!.shape, data: out[o.name]!.data, binary: o.binary })),
        });
        return { status: 200, body: payload, headers };
      });
    if (isTask(action))
      return withEndpoint(action, name, async () => {
        only('POST');
        const handler = taskHandler(model, action);
        const body = await this.readBody(req, onBody);
        const type = req.headers['content-type'];
        return json(200, await handler.handle({ model, body, query: url.searchParams, contentType: type, signal }));
      });
    return withEndpoint('unknown', name, () => Promise.reject(new NotFoundError(`no such endpoint: ${url.pathname}; a model has GET /v2/models/${name}[/ready] and POST .../infer${model.task ? ` and .../${model.task}` : ''}`)));
  }

  /** The whole body, refused with 413 past the limit (by Content-Length before reading, or while reading). */
  private readBody(req: IncomingMessage, onBody: (n: number) => void): Promise<Buffer> {
    const limit = this.maxBodyBytes;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) return Promise.reject(new PayloadTooLargeError(limit, Number(declared)));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let n = 0;
      const onData = (c: Buffer) => {
        n += c.length;
        onBody(n);
        if (n > limit) {
          req.off('data', onData);
          req.pause();
          reject(new PayloadTooLargeError(limit));
          return;
        }
        chunks.push(c);
      };
      req.on('data', onData);
      req.once('end', () => resolve(Buffer.concat(chunks, n)));
      req.once('error', (e) => reject(new BadRequestError(`the request body could not be read: ${e.message}`)));
      req.once('close', () => {
        if (!req.complete) reject(new CancelledError('(request body)'));
      });
    });
  }
}
