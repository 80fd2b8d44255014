/** The server's defaults: their own entry (`@effnet/serve/defaults`) so that the CLI declares its options without loading the server. */
export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBatch: 16,
  maxDelayMs: 5,
  maxQueue: 256,
  maxBodyMb: 64,
  timeoutMs: 30_000,
} as const;
