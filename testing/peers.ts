/**
 * Peer checks for tests that compare with PyTorch/torchvision or run the ONNX checker. They use Debian's packages
 * under /usr/bin/python3 (EFFNET_PYTHON overrides). Without them the tests skip and say how to install them; with
 * CI=true a missing peer is a failure.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';

export const PYTHON = process.env.EFFNET_PYTHON ?? '/usr/bin/python3';
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** `../shared` beside the repository (CI has it; a user's clone does not). EFFNET_SHARED overrides. */
export const SHARED_DIR = process.env.EFFNET_SHARED ?? join(REPO_ROOT, '..', 'shared');
const PEERS_DIR = join(SHARED_DIR, 'peers');
/** Peers that are sources in ../shared/peers rather than Debian packages. */
const SOURCE_PEERS = new Set(['timm', 'effdet', 'segmentation_models_pytorch', 'pycocotools']);
export const INSTALL_HINT =
  'apt-get update && apt-get install -y python3-torchvision python3-omegaconf python3-onnx python3-skimage python3-sklearn cython3 python3-dev ' +
  '(timm, effdet, segmentation_models_pytorch and pycocotools come from ../shared/peers beside the repository)';

let peersPath: string | null | undefined;
/**
 * PYTHONPATH for the source peers: ../shared/peers/py, plus pycocotools built once by ../shared/peers/setup.sh.
 * null when ../shared is not there.
 */
export function peersPythonPath(): string | null {
  if (peersPath !== undefined) return peersPath;
  peersPath = null;
  if (!existsSync(join(PEERS_DIR, 'py'))) return peersPath;
  peersPath = join(PEERS_DIR, 'py');
  const r = spawnSync('bash', [join(PEERS_DIR, 'setup.sh')], { encoding: 'utf8', timeout: 600_000 });
  const m = /EFFNET_PEERS_PYTHONPATH=(\S+)/.exec(r.stdout ?? '');
  if (r.status === 0 && m) peersPath = m[1]!;
  return peersPath;
}

/** The environment peer scripts run in: two threads, the source peers on PYTHONPATH where ../shared has them. */
export function pythonEnv(): NodeJS.ProcessEnv {
  const extra = peersPythonPath();
  const path = [extra, process.env.PYTHONPATH].filter(Boolean).join(':');
  return { ...process.env, OMP_NUM_THREADS: '2', ...(path ? { PYTHONPATH: path } : {}) };
}

const cache = new Map<string, boolean>();
export function pythonHas(modules: string[]): boolean {
  const key = modules.join(',');
  if (!cache.has(key)) {
    const env = modules.some((m) => SOURCE_PEERS.has(m)) ? pythonEnv() : process.env;
    const r = spawnSync(PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore', env });
    cache.set(key, r.status === 0);
  }
  return cache.get(key)!;
}

/** describe() that runs only where the Python peers exist; fails under CI=true when they do not. */
export function describeWithPeers(modules: string[], name: string, fn: () => void): void {
  if (pythonHas(modules)) {
    describe(name, fn);
    return;
  }
  const hint = `${name}: needs ${modules.join(', ')} under ${PYTHON}; install with: ${INSTALL_HINT}`;
  if (process.env.CI === 'true' || process.env.CI === '1') {
    describe(name, () => it('has its Python peers installed', () => {
      throw new Error(hint);
    }));
    return;
  }
  console.warn(`skipping ${hint}`);
  // The body is not collected: it may need the peers just to set up its fixtures.
  describe.skip(name, () => it(`skipped: ${hint}`, () => undefined));
}

/** Runs a Python script of the repo with the peer interpreter; throws with its stderr on failure. */
export function runPython(script: string, args: string[], timeoutMs = 600_000): string {
  const r = spawnSync(PYTHON, [join(REPO_ROOT, script), ...args], { encoding: 'utf8', timeout: timeoutMs, env: pythonEnv(), maxBuffer: 256 * 1024 ** 2 });
  if (r.status !== 0) throw new Error(`${script} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return r.stdout;
}

/** Runs Python source (`python3 -c`) with the peers on the path; its stdout. */
export function runPythonCode(code: string, timeoutMs = 120_000): string {
  const r = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8', timeout: timeoutMs, env: pythonEnv(), maxBuffer: 256 * 1024 ** 2 });
  if (r.status !== 0) throw new Error(`python -c failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return r.stdout;
}

export interface TorchvisionFixture {
  dir: string;
  weights: string;
  input: string;
  logits: string;
  meta: Record<string, unknown>;
}

/**
 * torchvision reference fixtures (random weights with non-trivial BN statistics, an input and torchvision's logits),
 * generated once per script version into the OS temp dir.
 */
/**
 * A fixture directory made by a reference script, generated once per script version and key into the OS temp dir:
 * `args(dir)` are the script's arguments; the script must write `meta.json` last.
 */
export function scriptFixture(script: string, key: (string | number)[], args: (dir: string) => string[]): string {
  const version = createHash('sha256').update(readFileSync(join(REPO_ROOT, script))).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), 'effnet-fixtures', [...key, version].join('-'));
  if (!existsSync(dir)) {
    // Written aside, then renamed into place: a test file running at the same time sees all of it or none.
    mkdirSync(join(tmpdir(), 'effnet-fixtures'), { recursive: true });
    const tmp = mkdtempSync(`${dir}.tmp-`);
    try {
      runPython(script, args(tmp));
      renameSync(tmp, dir);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(dir)) throw e;
    }
  }
  return dir;
}

export function torchvisionFixture(variant: string, opts: { resolution?: number; batch?: number; padding?: 'symmetric' | 'same'; numClasses?: number; exportOnnx?: boolean } = {}): TorchvisionFixture {
  const key = [variant, opts.resolution ?? 'default', opts.batch ?? 2, opts.padding ?? 'symmetric', opts.numClasses ?? 1000, opts.exportOnnx ? 'onnx' : ''];
  const dir = scriptFixture('scripts/torchvision_reference.py', key, (out) => {
    const args = ['--variant', variant, '--out', out, '--batch', String(opts.batch ?? 2), '--padding', opts.padding ?? 'symmetric', '--num-classes', String(opts.numClasses ?? 1000)];
    if (opts.resolution) args.push('--resolution', String(opts.resolution));
    if (opts.exportOnnx) args.push('--export-onnx');
    return args;
  });
  return {
    dir,
    weights: join(dir, 'weights.safetensors'),
    input: join(dir, 'input.npy'),
    logits: join(dir, 'logits.npy'),
    meta: JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')),
  };
}

/**
 * scripts/make_pth.py's files for a torchvision fixture's weights (weights.zip.pth, weights.legacy.pth,
 * weights.nested.pth, weights.module.zip.pth and the rest its docstring lists), generated once per script version. Returns their directory.
 */
export function pthFixture(fx: TorchvisionFixture): string {
  return scriptFixture('scripts/make_pth.py', ['pth', basename(fx.dir)], (out) => ['--out', out, '--weights', fx.weights]);
}

export interface EffdetFixture {
  dir: string;
  weights: string;
  input: string;
  /** Raw head outputs by name (class_P3 ... box_P7): paths of effdet's .npy files. */
  outputs: Record<string, string>;
  meta: { image_size: [number, number]; levels: number[]; outputs: Record<string, { shape: number[]; max_abs: number; input_sensitivity: number | null; float32_error: number }> } & Record<string, unknown>;
}

/**
 * effdet reference fixtures (scripts/effdet_reference.py): effdet's model with random, non-trivial weights under its
 * own names, an input, and its raw class/box outputs per level (its float64 forward). `fpnName` overrides the
 * config's fusion.
 */
export function effdetFixture(model: string, opts: { imageSize?: [number, number]; batch?: number; fpnName?: string; numClasses?: number } = {}): EffdetFixture {
  const size = opts.imageSize ? opts.imageSize.join('x') : 'default';
  const key = ['effdet', model, size, opts.batch ?? 2, opts.fpnName ?? 'config', opts.numClasses ?? 90];
  const dir = scriptFixture('scripts/effdet_reference.py', key, (out) => {
    const args = ['fixture', '--model', model, '--out', out, '--batch', String(opts.batch ?? 2), '--num-classes', String(opts.numClasses ?? 90)];
    if (opts.imageSize) args.push('--image-size', opts.imageSize.join(','));
    if (opts.fpnName) args.push('--fpn-name', opts.fpnName);
    return args;
  });
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as EffdetFixture['meta'];
  return {
    dir,
    weights: join(dir, 'weights.safetensors'),
    input: join(dir, 'input.npy'),
    outputs: Object.fromEntries(Object.keys(meta.outputs).map((name) => [name, join(dir, `${name}.npy`)])),
    meta,
  };
}

/** Max |a - b| and max |b|. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { diff, scale };
}

/**
 * effdet's own .pth (torch.save(model.state_dict()), the format of its releases) of an effdet fixture's weights
 * (scripts/effdet_pth.py), generated once per script version. Returns the file.
 */
export function effdetPthFixture(fx: EffdetFixture): string {
  const dir = scriptFixture('scripts/effdet_pth.py', ['effdet-pth', basename(fx.dir)], (out) => [
    '--model', String(fx.meta.model), '--weights', fx.weights, '--out', out, '--num-classes', String(fx.meta.num_classes ?? 90), '--image-size', fx.meta.image_size.join(','),
  ]);
  return join(dir, 'model.pth');
}
