import { parseArgs } from 'node:util';
import { EffnetError } from '@effnet/core';
import { listCached, pull, type PullProgress, Registry, removeCached, resolveCacheDir, verifyCache } from '@effnet/zoo';
import { bar, duration, type ProgressSink, redraw } from '../progress.js';
import { formatTable } from '../table.js';

export type { ProgressSink };


const COMMON = {
  registry: { type: 'string', multiple: true },
  'cache-dir': { type: 'string' },
} as const;

export const ZOO_USAGE = `  effnet zoo list [--json] [--registry <file>]     pretrained entries: name, arch, top-1, size, cached?
  effnet pull <name> [--registry <file>] [--offline]
                                                    download and verify into the cache (EFFNET_CACHE)
  effnet zoo rm <name>                              remove an entry from the cache
  effnet zoo verify [<name> ...]                    re-hash the cache against the recorded sha256
                                                    (all take --cache-dir <dir>; --registry adds a registry file)
  effnet run / export also take a pretrained name (--model efficientnet_b0.ra_in1k): pulled, converted, loaded`;

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

interface CommonValues {
  registry?: string[];
  'cache-dir'?: string;
}

/** `effnet zoo list`: rows of name, arch, family, top-1, size, cached. */
export async function zooList(o: { json: boolean; registry?: string[]; cacheDir?: string }): Promise<string> {
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
      top1: e.top1 ?? null,
      top1Resolution: e.top1Resolution ?? null,
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
      r.top1 === null ? '-' : `${r.top1}${r.top1Resolution ? ` @${r.top1Resolution}` : ''}`,
      size(r),
      r.cached ? 'yes' : '-',
    ]),
  );
  return [table, '', `${rows.length} entries (${registry.sources.join(', ')}); cache: ${resolveCacheDir(o.cacheDir)}`].join('\n');
}

/** `effnet pull <name>`: returns the lines for stdout; progress goes to `progress`. */
export async function pullCommand(o: { name: string; registry?: string[]; cacheDir?: string; offline?: boolean; progress: ProgressSink; signal?: AbortSignal }): Promise<string[]> {
  const registry = await Registry.load({ registry: o.registry });
  const reporter = progressReporter(o.progress);
  try {
    const r = await pull(o.name, { registry, cacheDir: o.cacheDir, offline: o.offline, onProgress: reporter.onProgress, signal: o.signal });
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
  const registry = await Registry.load({ registry: o.registry });
  const r = await removeCached(o.name, { cacheDir: o.cacheDir, registry });
  return [r.removed ? `removed ${r.dir}` : `${o.name} is not in the cache (${resolveCacheDir(o.cacheDir)})`];
}

/** `effnet zoo verify [names]`: lines and whether everything checked out. */
export async function zooVerify(o: { names?: string[]; registry?: string[]; cacheDir?: string }): Promise<{ lines: string[]; ok: boolean }> {
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

/** `effnet zoo <list|rm|verify> ...` */
export async function zooCli(args: string[], out: (s: string) => void): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list': {
      const { values } = parseArgs({ args: rest, options: { ...COMMON, json: { type: 'boolean', default: false } } });
      out(await zooList({ json: values.json!, registry: values.registry, cacheDir: values['cache-dir'] }));
      return 0;
    }
    case 'rm': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: COMMON });
      if (positionals.length !== 1) throw new EffnetError(`effnet zoo rm needs one name\n\n${ZOO_USAGE}`);
      (await zooRm({ name: positionals[0]!, registry: values.registry, cacheDir: values['cache-dir'] })).forEach((l) => out(l));
      return 0;
    }
    case 'verify': {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: COMMON });
      const r = await zooVerify({ names: positionals, registry: values.registry, cacheDir: values['cache-dir'] });
      r.lines.forEach((l) => out(l));
      return r.ok ? 0 : 1;
    }
    case 'pull':
      return pullCli(rest, out);
    default:
      throw new EffnetError(`effnet zoo needs list, rm or verify${sub ? ` (got "${sub}")` : ''}\n\n${ZOO_USAGE}`);
  }
}

/** `effnet pull <name>` */
export async function pullCli(args: string[], out: (s: string) => void, progress: ProgressSink = process.stderr): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...COMMON, offline: { type: 'boolean', default: false } } });
  if (positionals.length !== 1) throw new EffnetError(`effnet pull needs one name (see "effnet zoo list")\n\n${ZOO_USAGE}`);
  const v = values as CommonValues & { offline?: boolean };
  (await pullCommand({ name: positionals[0]!, registry: v.registry, cacheDir: v['cache-dir'], offline: v.offline, progress })).forEach((l) => out(l));
  return 0;
}
