/**
 * The timing half of benchmarking, with no model code: its own entry (`@effnet/tasks/bench`) so that the workers of
 * `npm run bench` time raw sessions with the same code as `effnet bench` without loading the rest of the package.
 */
import { InvalidSpecError } from '@effnet/core';

export interface LatencyStats {
  /** Milliseconds per run. */
  medianMs: number;
  p90Ms: number;
  minMs: number;
  meanMs: number;
  /** batch / median. */
  imagesPerSecond: number;
}

/** Median, p90, min and mean of per-run latencies (ms), and the throughput at the median for `batch` images per run. */
export function latencyStats(latencies: readonly number[], batch: number): LatencyStats {
  if (!latencies.length) throw new InvalidSpecError('latencies', latencies, 'at least one timed run');
  const s = [...latencies].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  const medianMs = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { medianMs, p90Ms: q(0.9), minMs: s[0]!, meanMs: s.reduce((a, b) => a + b, 0) / s.length, imagesPerSecond: (1000 * batch) / medianMs };
}

/** Runs `fn` `warmup` times untimed, then `iterations` times timed; returns each timed run's milliseconds. */
export async function timeRuns(fn: () => Promise<unknown>, o: { warmup: number; iterations: number; onRun?: (done: number, total: number) => void }): Promise<number[]> {
  const total = o.warmup + o.iterations;
  for (let i = 0; i < o.warmup; i++) {
    await fn();
    o.onRun?.(i + 1, total);
  }
  const out: number[] = [];
  for (let i = 0; i < o.iterations; i++) {
    const t = process.hrtime.bigint();
    await fn();
    out.push(Number(process.hrtime.bigint() - t) / 1e6);
    o.onRun?.(o.warmup + i + 1, total);
  }
  return out;
}

/** The process's peak resident set size so far, in MB. */
export const peakRssMB = () => process.resourceUsage().maxRSS / 1024;

