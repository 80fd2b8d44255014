/**
 * Prometheus metrics in the text exposition format (version 0.0.4): counters, gauges and histograms with labels.
 * Small on purpose: the server needs a handful of series, not a client library.
 */

type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra) pairs.push(extra);
  return pairs.length ? `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
}

const keyOf = (labelNames: readonly string[], labels: Labels) => labelNames.map((n) => labels[n] ?? '').join('\u0000');

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`metric name "${name}" is not a valid Prometheus name`);
  }
  abstract readonly type: string;
  protected abstract lines(): string[];
  expose(): string {
    return [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, ...this.lines()].join('\n');
  }
  protected labelsOf(labels: Labels): Labels {
    const out: Labels = {};
    for (const n of this.labelNames) out[n] = labels[n] ?? '';
    return out;
  }
}

export class Counter extends Metric {
  readonly type = 'counter';
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  inc(labels: Labels = {}, by = 1): void {
    const k = keyOf(this.labelNames, labels);
    const e = this.values.get(k) ?? { labels: this.labelsOf(labels), value: 0 };
    e.value += by;
    this.values.set(k, e);
  }
  get(labels: Labels = {}): number {
    return this.values.get(keyOf(this.labelNames, labels))?.value ?? 0;
  }
  protected lines(): string[] {
    return [...this.values.values()].map((e) => `${this.name}${labelText(e.labels)} ${formatValue(e.value)}`);
  }
}

/** A gauge whose values are read when scraped. */
export class Gauge extends Metric {
  readonly type = 'gauge';
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly collect: () => { labels: Labels; value: number }[],
  ) {
    super(name, help, labelNames);
  }
  protected lines(): string[] {
    return this.collect().map((e) => `${this.name}${labelText(this.labelsOf(e.labels))} ${formatValue(e.value)}`);
  }
}

export class Histogram extends Metric {
  readonly type = 'histogram';
  private readonly values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    if (!buckets.every((b, i) => i === 0 || b > buckets[i - 1]!)) throw new Error(`histogram ${name}: buckets must increase`);
  }
  observe(labels: Labels, v: number): void {
    const k = keyOf(this.labelNames, labels);
    const e = this.values.get(k) ?? { labels: this.labelsOf(labels), counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((b, i) => {
      if (v <= b) e.counts[i]!++;
    });
    e.sum += v;
    e.count++;
    this.values.set(k, e);
  }
  protected lines(): string[] {
    const out: string[] = [];
    for (const e of this.values.values()) {
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket${labelText(e.labels, ['le', formatValue(b)])} ${e.counts[i]}`));
      out.push(`${this.name}_bucket${labelText(e.labels, ['le', '+Inf'])} ${e.count}`);
      out.push(`${this.name}_sum${labelText(e.labels)} ${formatValue(e.sum)}`);
      out.push(`${this.name}_count${labelText(e.labels)} ${e.count}`);
    }
    return out;
  }
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];
  add<M extends Metric>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new Error(`metric ${m.name} is registered twice`);
    this.metrics.push(m);
    return m;
  }
  /** The text exposition format, ending with a newline. */
  expose(): string {
    return `${this.metrics.map((m) => m.expose()).join('\n')}\n`;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The server's series. */
export function serverMetrics(queues: () => { model: string; queued: number; running: number }[]) {
  const registry = new MetricsRegistry();
  const requests = registry.add(new Counter('effnet_requests_total', 'HTTP requests answered, by model, endpoint and status code', ['model', 'endpoint', 'code']));
  const latency = registry.add(
    new Histogram('effnet_request_duration_seconds', 'Time from a request arriving to its response being sent', ['model', 'endpoint'], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
  );
  const batchSize = registry.add(new Histogram('effnet_batch_size', 'Rows per batch the model ran', ['model'], [1, 2, 4, 8, 16, 32, 64, 128, 256]));
  const batchDuration = registry.add(new Histogram('effnet_batch_duration_seconds', 'Time one batch took to run', ['model'], [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]));
  registry.add(new Gauge('effnet_queue_depth', 'Requests waiting in the model queue', ['model'], () => queues().map((q) => ({ labels: { model: q.model }, value: q.queued }))));
  registry.add(new Gauge('effnet_batch_running', '1 while a batch of the model runs', ['model'], () => queues().map((q) => ({ labels: { model: q.model }, value: q.running }))));
  return { registry, requests, latency, batchSize, batchDuration };
}
