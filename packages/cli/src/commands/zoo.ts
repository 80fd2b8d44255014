import type { PullProgress } from '@effnet/zoo';

/** The zoo, loaded when a zoo command runs (not for effnet --help). */
const zoo = () => import('@effnet/zoo');
import { defineCommand, type OptionSpec } from '../args.js';
import { bar, duration, type ProgressSink, redraw } from '../progress.js';
import { formatTable } from '../table.js';

export type { ProgressSink };




export function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 1)} MB`;
}

/**
 * Progress for `effnet pull`: on a terminal, one bar redrawn in place (bytes, rate, ETA); otherwise plain lines,
 * at most one per 10% (or per 5 s when the size is unknown).
 */
export function progressReporter(sink: ProgressSink, now: () => number = Date.now): { onProgress: (p: PullProgress) => void; finish: () => void } {
  let lastPct = -1;
  let lastTime = 0;
  let drawn = false;
  let waited = false;
  let verifying = false;
  const line = (p: PullProgress) => {
    const size = p.total !== undefined ? `${megabytes(p.bytes)} / ${megabytes(p.total)}` : megabytes(p.bytes);
    const rate = p.rate !== undefined ? `${megabytes(p.rate)}/s` : '';
    const eta = p.eta !== undefined ? `ETA ${duration(p.eta)}` : '';
    return [size, rate, eta].filter(Boolean).join('  ');
  };
  return {
    onProgress(p) {
      if (p.phase === 'wait') {
        if (!waited) sink.write(`${p.name}: another process is downloading it; waiting for it to finish\n`);
        waited = true;
        return;
      }
      if (p.phase === 'verify') {
        if (!verifying) {
          if (drawn) sink.write('\n');
          drawn = false;
          sink.write(`${p.name}: verifying sha256\n`);
        }
        verifying = true;
        return;
      }
      if (sink.isTTY) {
        const width = Math.max(10, Math.min(40, (sink.columns ?? 80) - 60));
        redraw(sink, `${p.name} ${p.total ? bar(p.bytes / p.total, width) : ''}  ${line(p)}`);
        drawn = true;
        return;
      }
      const t = now();
      const pct = p.total ? Math.floor((p.bytes / p.total) * 10) * 10 : -1;
      const due = p.total ? pct > lastPct : t - lastTime >= 5000;
      if (!due) return;
      lastPct = pct;
      lastTime = t;
      sink.write(`${p.name}: ${p.total ? `${pct}% ` : ''}${line(p)}\n`);
    },
    finish() {
      if (drawn) sink.write('\n');
      drawn = false;
    },
  };
}

/** `effnet zoo list`: rows of name, arch, family, top-1, size, cached. */
export async function zooList(o: { json: boolean; registry?: string[]; cacheDir?: string }): Promise<string> {
  const { listCached, Registry, resolveCacheDir } = await zoo();
  const registry = await Registry.load({ registry: o.registry });
  const cached = new Map((await listCached({ cacheDir: o.cacheDir })).map((c) => [c.name, c.meta]));
  const rows = registry.entries().map((e) => {
    const meta = cached.get(e.name);
    const valid = meta && (!e.sha256 || meta.sha256 === e.sha256);
    return {
      name: e.name,
      arch: e.arch,
      family: e.family,
      format: e.format,
      task: e.task ?? 'classification',
      top1: e.top1 ?? null,
      top1Resolution: e.top1Resolution ?? null,
      cocoMap: e.cocoMap ?? null,
      size: e.size ?? meta?.size ?? null,
      approxSizeMB: e.approxSizeMB ?? null,
      cached: Boolean(valid),
      labels: e.labels,
      license: e.license ?? null,
      url: e.url,
      origin: e.origin,
    };
  });
  if (o.json) return JSON.stringify(rows, null, 2);
  const size = (r: (typeof rows)[number]) => (r.size ? megabytes(r.size) : r.approxSizeMB ? `~${+r.approxSizeMB.toFixed(r.approxSizeMB < 100 ? 1 : 0)} MB` : '-');
  const table = formatTable(
    ['name', 'arch', 'family', 'top-1', 'size', 'cached'],
    rows.map((r) => [
      r.name,
      r.arch,
      r.family,
      r.top1 !== null ? `${r.top1}${r.top1Resolution ? ` @${r.top1Resolution}` : ''}` : r.cocoMap !== null ? `${r.cocoMap.toFixed(1)} mAP` : '-',
      size(r),
      r.cached ? 'yes' : '-',
    ]),
  );
  return [table, '', `${rows.length} entries (${registry.sources.join(', ')}); cache: ${resolveCacheDir(o.cacheDir)}`].join('\n');
}

/** `effnet pull <name>`: returns the lines for stdout; progress goes to `progress`. */
export async function pullCommand(o: { name: string; registry?: string[]; cacheDir?: string; offline?: boolean; idleTimeoutMs?: number; progress: ProgressSink; signal?: AbortSignal }): Promise<string[]> {
  const { pull, Registry } = await zoo();
  const registry = await Registry.load({ registry: o.registry });
  const reporter = progressReporter(o.progress);
  try {
    const r = await pull(o.name, { registry, cacheDir: o.cacheDir, offline: o.offline, idleTimeoutMs: o.idleTimeoutMs, onProgress: reporter.onProgress, signal: o.signal });
    reporter.finish();
    const how = { pinned: 'the sha256 its publisher pins', server: "the server's sha256 ETag", computed: 'no published checksum (recorded the computed one)' }[r.checksumSource];
    const lines = [
      r.cached ? `${r.name}: already in the cache${r.waitedForLock ? ' (another process just downloaded it)' : ''}` : `${r.name}: downloaded ${megabytes(r.size)}${r.resumedFrom ? ` (resumed from ${megabytes(r.resumedFrom)})` : ''}, verified against ${how}`,
      `${r.path}`,
      `sha256 ${r.sha256}`,
    ];
    return lines;
  } catch (e) {
    reporter.finish();
    throw e;
  }
}

/** `effnet zoo rm <name>`. */
export async function zooRm(o: { name: string; registry?: string[]; cacheDir?: string }): Promise<string[]> {
  const { Registry, removeCached, resolveCacheDir } = await zoo();
  const registry = await Registry.load({ registry: o.registry });
  const r = await removeCached(o.name, { cacheDir: o.cacheDir, registry });
  return [r.removed ? `removed ${r.dir}` : `${o.name} is not in the cache (${resolveCacheDir(o.cacheDir)})`];
}

/** `effnet zoo verify [names]`: lines and whether everything checked out. */
export async function zooVerify(o: { names?: string[]; registry?: string[]; cacheDir?: string }): Promise<{ lines: string[]; ok: boolean }> {
  const { Registry, resolveCacheDir, verifyCache } = await zoo();
  const registry = await Registry.load({ registry: o.registry });
  const reports = await verifyCache({ cacheDir: o.cacheDir, registry, names: o.names?.length ? o.names : undefined });
  if (!reports.length) return { lines: [`the cache (${resolveCacheDir(o.cacheDir)}) is empty`], ok: true };
  const lines = reports.map((r) => {
    const left = r.leftovers.length ? ` (also: ${r.leftovers.join(', ')})` : '';
    return r.ok ? `ok    ${r.name}  sha256 ${r.actual}${left}` : `FAIL  ${r.name}: ${r.problem}${left}`;
  });
  const bad = reports.filter((r) => !r.ok).length;
  lines.push(bad ? `${bad} of ${reports.length} failed` : `${reports.length} verified`);
  return { lines, ok: bad === 0 };
}

const REGISTRY_OPTIONS = {
  registry: { type: 'strings', valueName: 'FILE', description: 'add the entries of a registry file (repeatable; also EFFNET_REGISTRY)' },
  'cache-dir': { type: 'string', valueName: 'DIR', description: 'the cache (default EFFNET_CACHE, else $XDG_CACHE_HOME/effnet, else ~/.cache/effnet)' },
} as const satisfies Record<string, OptionSpec>;

export const zooListCommand = defineCommand({
  name: 'zoo list',
  summary: 'pretrained entries: name, arch, top-1, size, cached?',
  usage: 'effnet zoo list [--json] [--registry FILE]',
  options: { ...REGISTRY_OPTIONS, json: { type: 'boolean', description: 'print JSON instead of a table' } },
  examples: ['effnet zoo list', 'effnet zoo list --json --registry my-models.json'],
  async run({ values: v }, io) {
    io.out(await zooList({ json: v.json, registry: v.registry, cacheDir: v['cache-dir'] }));
    return 0;
  },
});

export const zooRmCommand = defineCommand({
  name: 'zoo rm',
  summary: 'remove an entry from the cache',
  usage: 'effnet zoo rm <name>',
  positionals: { name: '<name>', description: 'a zoo entry', min: 1, max: 1 },
  options: REGISTRY_OPTIONS,
  examples: ['effnet zoo rm efficientnet_b0.ra_in1k'],
  async run({ values: v, positionals }, io) {
    (await zooRm({ name: positionals[0]!, registry: v.registry, cacheDir: v['cache-dir'] })).forEach((l) => io.out(l));
    return 0;
  },
});

export const zooVerifyCommand = defineCommand({
  name: 'zoo verify',
  summary: 're-hash cached files against the sha256 recorded at pull time',
  usage: 'effnet zoo verify [<name> ...]',
  positionals: { name: '<name>', description: 'entries to check (default: every cached one)' },
  options: REGISTRY_OPTIONS,
  examples: ['effnet zoo verify', 'effnet zoo verify efficientnet_b0.ra_in1k'],
  async run({ values: v, positionals }, io) {
    const r = await zooVerify({ names: positionals, registry: v.registry, cacheDir: v['cache-dir'] });
    r.lines.forEach((l) => io.out(l));
    return r.ok ? 0 : 1;
  },
});

export const pullCommandSpec = defineCommand({
  name: 'pull',
  summary: 'download and verify a pretrained entry into the cache',
  usage: 'effnet pull <name> [--registry FILE] [--offline]',
  positionals: { name: '<name>', description: 'a zoo entry (effnet zoo list); a bare architecture name means its first tag', min: 1, max: 1 },
  options: {
    ...REGISTRY_OPTIONS,
    offline: { type: 'boolean', description: 'never touch the network (also EFFNET_OFFLINE=1 or HF_HUB_OFFLINE=1)' },
    'idle-timeout': { type: 'number', min: 1, max: 86400, valueName: 'SECONDS', description: 'give up on a transfer that receives nothing for this long (default 60)' },
  },
  examples: ['effnet pull efficientnet_b0.ra_in1k', 'effnet pull efficientnet_b0'],
  async run({ values: v, positionals }, io) {
    const lines = await pullCommand({
      name: positionals[0]!,
      registry: v.registry,
      cacheDir: v['cache-dir'],
      offline: v.offline,
      idleTimeoutMs: v['idle-timeout'] === undefined ? undefined : v['idle-timeout'] * 1000,
      progress: io.progress,
    });
    lines.forEach((l) => io.out(l));
    return 0;
  },
});
