/**
 * Errors a client can cause, each with the HTTP status it is answered with. The message names what was wrong (the
 * tensor, the header, the model) and what would be accepted; the server sends it as `{"error": message}`.
 */
import { EffnetError } from '@effnet/core';

export class ServeError extends EffnetError {
  override name = 'ServeError';
  constructor(
    readonly status: number,
    message: string,
    /** Extra response headers (Retry-After, Allow). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** 400: a request that cannot be read or does not fit the model (malformed JSON, wrong shape or datatype). */
export class BadRequestError extends ServeError {
  override name = 'BadRequestError';
  constructor(message: string) {
    super(400, message);
  }
}

/** 404: no such model, version or endpoint. */
export class NotFoundError extends ServeError {
  override name = 'NotFoundError';
  constructor(message: string) {
    super(404, message);
  }
}

/** 405: the path exists but not with this method. */
export class MethodNotAllowedError extends ServeError {
  override name = 'MethodNotAllowedError';
  constructor(method: string, path: string, allowed: readonly string[]) {
    super(405, `${method} ${path} is not supported; use ${allowed.join(' or ')}`, { Allow: allowed.join(', ') });
  }
}

/** 413: a body over the limit. */
export class PayloadTooLargeError extends ServeError {
  override name = 'PayloadTooLargeError';
  constructor(limitBytes: number, got?: number) {
    super(413, `the request body${got !== undefined ? ` (${got} bytes)` : ''} is over this server's limit of ${limitBytes} bytes (--max-body-mb); send fewer rows per request`);
  }
}

/** 415: a body of a type this endpoint does not read. */
export class UnsupportedMediaTypeError extends ServeError {
  override name = 'UnsupportedMediaTypeError';
  constructor(message: string) {
    super(415, message);
  }
}

/** 501: an endpoint of a task this server does not implement yet. */
export class NotImplementedError extends ServeError {
  override name = 'NotImplementedError';
  constructor(message: string) {
    super(501, message);
  }
}

/** 503 + Retry-After: the model's queue is full; the client should retry later or elsewhere. */
export class QueueFullError extends ServeError {
  override name = 'QueueFullError';
  constructor(model: string, maxQueue: number, retryAfterSeconds: number) {
    super(503, `model "${model}" has ${maxQueue} requests queued already (--max-queue); retry after ${retryAfterSeconds} s`, { 'Retry-After': String(retryAfterSeconds) });
  }
}

/** 503: the server is shutting down and takes no new work. */
export class ShuttingDownError extends ServeError {
  override name = 'ShuttingDownError';
  constructor() {
    super(503, 'the server is shutting down and accepts no new requests; retry on another replica', { 'Retry-After': '1', Connection: 'close' });
  }
}

/**
 * A request that missed its deadline (--timeout-ms): 503 + Retry-After when it never left the queue (the server is
 * overloaded), 504 when its batch was running (the model is too slow for the deadline).
 */
export class RequestTimeoutError extends ServeError {
  override name = 'RequestTimeoutError';
  constructor(
    model: string,
    timeoutMs: number,
    readonly queued: boolean,
    retryAfterSeconds = 1,
  ) {
    super(
      queued ? 503 : 504,
      queued
        ? `model "${model}": the request waited ${timeoutMs} ms in the queue without starting (--timeout-ms); the server is overloaded, retry after ${retryAfterSeconds} s`
        : `model "${model}": the request did not finish within ${timeoutMs} ms (--timeout-ms)`,
      queued ? { 'Retry-After': String(retryAfterSeconds) } : {},
    );
  }
}

/** The client went away before its answer was ready (never sent; logged as 499 as nginx does). */
export class CancelledError extends ServeError {
  override name = 'CancelledError';
  constructor(model: string) {
    super(499, `model "${model}": the client closed the connection before its request ran`);
  }
}
