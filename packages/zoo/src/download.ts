import { createReadStream, createWriteStream } from 'node:fs';
import { stat, truncate, unlink } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { DownloadError } from './errors.js';
import { sleep } from './sleep.js';

export interface RetryOptions {
  /** Attempts in a row that make no progress before giving up (default 5). */
  attempts?: number;
  /** First backoff delay; doubles each time, with jitter (default 500 ms). */
  baseDelayMs?: number;
  /** Longest backoff delay, also the cap on a server's Retry-After (default 30 s). */
  maxDelayMs?: number;
}

/** What `onProgress` receives while bytes arrive. */
export interface TransferProgress {
  /** Bytes of the file on disk so far (including a resumed part). */
  bytes: number;
  /** Total size, when the server says. */
  total?: number;
  /** Bytes per second over this transfer. */
  rate: number;
  /** Seconds left at that rate, when the total is known. */
  eta?: number;
}

export interface DownloadOptions {
  url: string;
  /** The partial file to append to (resuming from its current size) or create. */
  dest: string;
  signal?: AbortSignal;
  retry?: RetryOptions;
  /** A stalled connection (no bytes for this long) is dropped and retried (default 60 s). */
  idleTimeoutMs?: number;
  /** The size the file must have (a pinned size): a larger announcement or stream is refused while it arrives. */
  expectedSize?: number;
  /** Extra request headers for a URL (authentication); called for every hop, so a redirect elsewhere drops them. */
  headersFor?: (url: URL) => Record<string, string>;
  onProgress?: (p: TransferProgress) => void;
}

export interface DownloadResult {
  /** Bytes in `dest` when done. */
  size: number;
  /** The size the server announced. */
  total?: number;
  /** A sha256 the server vouches for (X-Linked-Etag, else ETag, when it is 64 hex digits). */
  serverSha256?: string;
  serverSha256Header?: string;
  finalUrl: string;
  /** HTTP requests made (redirect hops not counted). */
  requests: number;
  /** Where the request that completed the file started (non-zero when a partial download was resumed). */
  resumedFrom: number;
}

/** A failure worth retrying (network trouble, 408, 429, 5xx, a cut connection). */
class Transient extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}


/** A sha256 from an ETag-like header value (`"abc..."`, `W/"abc..."`), if it is one. */
export function sha256FromEtag(value: string | string[] | undefined): string | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim().replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
  return v && /^[0-9a-f]{64}$/.test(v) ? v : undefined;
}

/** A transfer past the pinned size. */
class TooLarge extends Error {}

/** A network error as a user reads it; an idle timeout says so, and how to allow more. */
function describeNetworkError(e: NodeJS.ErrnoException, idleMs: number): string {
  if (e.code === 'ETIMEDOUT') return `timed out: the server sent nothing for ${idleMs / 1000} s (allow longer with --idle-timeout SECONDS, or idleTimeoutMs)`;
  return e.code ? `${e.code}: ${e.message}` : e.message;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function request(url: URL, headers: Record<string, string>, idleTimeoutMs: number, signal?: AbortSignal): Promise<IncomingMessage> {
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method: 'GET', headers, signal }, resolve);
    req.on('error', reject);
    req.setTimeout(idleTimeoutMs, () => req.destroy(Object.assign(new Error(`no data for ${idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.end();
  });
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function statusReason(status: number, url: string): string {
  switch (status) {
    case 404:
    case 410:
      return `HTTP ${status} (not found): check the entry's url; for a private Hugging Face mirror set HF_ENDPOINT`;
    case 401:
    case 403:
      return `HTTP ${status} (access denied): the file may be private or gated; set HF_TOKEN for Hugging Face, or check the mirror's permissions`;
    default:
      return `HTTP ${status} from ${url}`;
  }
}

/**
 * Downloads `url` into `dest`, resuming from what `dest` already holds with an HTTP Range request, following
 * redirects, and retrying transient failures with exponential backoff. Bytes already written are kept between
 * attempts (and between processes), so a cut connection costs only what was in flight.
 */
export async function download(o: DownloadOptions): Promise<DownloadResult> {
  const attemptsAllowed = o.retry?.attempts ?? 5;
  const baseDelay = o.retry?.baseDelayMs ?? 500;
  const maxDelay = o.retry?.maxDelayMs ?? 30_000;
  const idle = o.idleTimeoutMs ?? 60_000;
  const started = Date.now();
  let failures = 0;
  let requests = 0;
  let resumedFrom: number | undefined;
  let serverSha256: string | undefined;
  let serverSha256Header: string | undefined;
  let announced: number | undefined;
  let startBytes: number | undefined;
  let lastReason = '';
  let furthest = 0;

  const sizeOf = async () => {
    try {
      return (await stat(o.dest)).size;
    } catch {
      return 0;
    }
  };

  for (;;) {
    o.signal?.throwIfAborted();
    const offset = await sizeOf();
    startBytes ??= offset;
    // An attempt that got further than any before resets the failure count; one that merely re-sent bytes we
    // already had (a server that ignores Range and stalls at the same place) does not, or the loop would never end.
    let progressed = false;
    try {
      // Follow redirects by hand: Hugging Face answers with a 302 carrying X-Linked-Etag / X-Linked-Size.
      let url = new URL(o.url);
      let res: IncomingMessage | undefined;
      for (let hop = 0; ; hop++) {
        if (hop > 10) throw new DownloadError(o.url, 'more than 10 redirects', failures + 1);
        const headers: Record<string, string> = { 'user-agent': 'effnet-zoo', 'accept-encoding': 'identity', ...(o.headersFor?.(url) ?? {}) };
        if (offset > 0) headers.range = `bytes=${offset}-`;
        const r = await request(url, headers, idle, o.signal);
        const linked = sha256FromEtag(r.headers['x-linked-etag']);
        if (linked) {
          serverSha256 = linked;
          serverSha256Header = 'X-Linked-Etag';
        }
        const linkedSize = Number(headerValue(r.headers['x-linked-size']));
        if (Number.isInteger(linkedSize) && linkedSize > 0) announced = linkedSize;
        if (REDIRECTS.has(r.statusCode ?? 0) && r.headers.location) {
          r.resume();
          url = new URL(r.headers.location, url);
          continue;
        }
        res = r;
        break;
      }
      requests++;
      const status = res.statusCode ?? 0;
      if (!serverSha256) {
        const etag = sha256FromEtag(res.headers.etag);
        if (etag) {
          serverSha256 = etag;
          serverSha256Header = 'ETag';
        }
      }
      if (status === 416) {
        res.resume();
        const total = Number(/\/(\d+)$/.exec(headerValue(res.headers['content-range']) ?? '')?.[1]);
        if (Number.isInteger(total) && total === offset) {
          announced ??= total;
          resumedFrom = offset;
          return { size: offset, total, serverSha256, serverSha256Header, finalUrl: url.href, requests, resumedFrom: offset };
        }
        await truncate(o.dest, 0).catch(() => undefined);
        throw new Transient(`HTTP 416 for a range from byte ${offset}; restarting from the beginning`);
      }
      if (status === 408 || status === 429 || status >= 500) {
        res.resume();
        const ra = Number(headerValue(res.headers['retry-after']));
        throw new Transient(`HTTP ${status} from ${url.href}`, Number.isFinite(ra) && ra >= 0 ? ra * 1000 : undefined);
      }
      if (status !== 200 && status !== 206) {
        res.resume();
        throw new DownloadError(o.url, statusReason(status, url.href), failures + 1, status);
      }
      let append = false;
      let total: number | undefined;
      if (status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headerValue(res.headers['content-range']) ?? '');
        if (!m || Number(m[1]) !== offset) {
          res.destroy();
          await truncate(o.dest, 0).catch(() => undefined);
          throw new Transient(`the server answered a range from byte ${offset} with "${res.headers['content-range']}"; restarting`);
        }
        append = true;
        if (m[3] !== '*') total = Number(m[3]);
      } else {
        const len = Number(headerValue(res.headers['content-length']));
        if (Number.isInteger(len) && len >= 0) total = len;
      }
      total ??= announced;
      if (total !== undefined) announced = total;
      if (o.expectedSize !== undefined && total !== undefined && total !== o.expectedSize) {
        res.destroy();
        await unlink(o.dest).catch(() => undefined);
        throw new DownloadError(o.url, `the server announces ${total} bytes but the entry pins ${o.expectedSize}; nothing was kept`, failures + 1);
      }
      resumedFrom = append ? offset : 0;
      let bytes = append ? offset : 0;
      if (!append) startBytes = 0;
      let lastReport = 0;
      const report = (force = false) => {
        const now = Date.now();
        if (!o.onProgress || (!force && now - lastReport < 100)) return;
        lastReport = now;
        const rate = (bytes - (startBytes ?? 0)) / Math.max(1e-3, (now - started) / 1000);
        o.onProgress({ bytes, total, rate, eta: total !== undefined && rate > 0 ? Math.max(0, (total - bytes) / rate) : undefined });
      };
      report(true);
      // The request's own timeout covers the wait for headers; a body that stops arriving needs its own.
      res.setTimeout(idle, () => res.destroy(Object.assign(new Error(`no data for ${idle} ms`), { code: 'ETIMEDOUT' })));
      const file = createWriteStream(o.dest, { flags: append ? 'a' : 'w' });
      const closed = once(file, 'close').catch(() => undefined);
      try {
        await pipeline(
          res,
          async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              bytes += chunk.length;
              if (o.expectedSize !== undefined && bytes > o.expectedSize) throw new TooLarge(String(bytes));
              if (bytes > furthest) {
                furthest = bytes;
                progressed = true;
              }
              report();
              yield chunk;
            }
          },
          file,
          { signal: o.signal },
        );
      } catch (e) {
        if (o.signal?.aborted) throw e;
        if (e instanceof TooLarge) {
          await unlink(o.dest).catch(() => undefined);
          throw new DownloadError(o.url, `the server sent more than the ${o.expectedSize} bytes the entry pins; the transfer was stopped and nothing was kept`, failures + 1);
        }
        const err = e as NodeJS.ErrnoException;
        throw new Transient(err.code === 'ETIMEDOUT' ? `${describeNetworkError(err, idle)}, after ${bytes} bytes` : `the connection broke after ${bytes} bytes (${describeNetworkError(err, idle)})`);
      } finally {
        // No write may land after this attempt: the next one resumes from the file's size.
        file.destroy();
        await closed;
      }
      report(true);
      const size = await sizeOf();
      if (total !== undefined && size < total) throw new Transient(`the connection closed after ${size} of ${total} bytes`);
      if (total !== undefined && size > total) {
        await truncate(o.dest, 0).catch(() => undefined);
        throw new DownloadError(o.url, `received ${size} bytes but the server announced ${total}; the partial file was discarded`, failures + 1);
      }
      return { size, total, serverSha256, serverSha256Header, finalUrl: url.href, requests, resumedFrom: resumedFrom ?? 0 };
    } catch (e) {
      if (o.signal?.aborted) throw o.signal.reason ?? e;
      if (e instanceof DownloadError) throw e;
      const transient = e instanceof Transient;
      const code = (e as NodeJS.ErrnoException).code;
      if (!transient && !code) throw e;
      lastReason = transient ? e.message : describeNetworkError(e as NodeJS.ErrnoException, idle);
      failures = progressed ? 1 : failures + 1;
      if (failures >= attemptsAllowed) throw new DownloadError(o.url, lastReason, failures);
      const backoff = Math.min(maxDelay, baseDelay * 2 ** (failures - 1)) * (0.75 + Math.random() * 0.5);
      const retryAfter = transient && e.retryAfterMs !== undefined ? Math.min(maxDelay, e.retryAfterMs) : 0;
      await sleep(Math.max(backoff, retryAfter), o.signal);
    }
  }
}

/** Copies a local source into `dest` with the same progress reporting. */
export async function copyLocal(src: string, dest: string, onProgress?: (p: TransferProgress) => void, signal?: AbortSignal): Promise<DownloadResult> {
  let total: number;
  try {
    total = (await stat(src)).size;
  } catch (e) {
    throw new DownloadError(src, `the local file cannot be read (${(e as Error).message}); check the entry's url`, 1);
  }
  const started = Date.now();
  let bytes = 0;
  await pipeline(
    createReadStream(src),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        bytes += chunk.length;
        const rate = bytes / Math.max(1e-3, (Date.now() - started) / 1000);
        onProgress?.({ bytes, total, rate, eta: (total - bytes) / rate });
        yield chunk;
      }
    },
    createWriteStream(dest, { flags: 'w' }),
    { signal },
  );
  return { size: bytes, total, finalUrl: src, requests: 0, resumedFrom: 0 };
}
