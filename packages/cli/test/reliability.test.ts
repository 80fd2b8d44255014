/**
 * The CLI's cases from the reliability report (issue 18), each a test that failed before its fix.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildEfficientNet,
  float32Tensor,
  floatToHalf,
  randomWeights,
  readNpy,
  serializeNpy,
  specFor,
  writeNpy,
  writeSafetensors,
} from '@effnet/core';
import { generateShapeDataset, loadCheckpoint, saveCheckpoint } from '@effnet/tasks';
import { describe, expect, it } from 'vitest';
import { snapshot } from '../../../testing/files.js';
import { errorReport, main } from '../src/cli.js';

const bin = fileURLToPath(new URL('../bin/effnet.js', import.meta.url));
const tmp = () => mkdtempSync(join(tmpdir(), 'effnet-rel-'));

async function run(args: string[]): Promise<string> {
  const lines: string[] = [];
  await main(args, (s) => lines.push(s), { write: () => true });
  return lines.join('\n');
}

/** The binary as a user runs it, in `cwd`: exit code, stdout, stderr. */
function cli(args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', env: { ...process.env, EFFNET_OFFLINE: '1', EFFNET_DEBUG: '', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('data loss', () => {
  it('train refuses an --out that holds another run (nothing in it changes); --force replaces it', async () => {
    const dir = tmp();
    await generateShapeDataset(join(dir, 'data'), { perClass: 6, size: 48, seed: 5 });
    const out = join(dir, 'other-run');
    mkdirSync(out);
    writeFileSync(join(out, 'model.json'), '{"format": "somebody else\'s model"}');
    writeFileSync(join(out, 'model.safetensors'), 'precious');
    const before = snapshot(out);
    const r = cli(['train', '--data', join(dir, 'data'), '--model', 'effnet-shapes', '--epochs', '1', '--freeze', 'backbone', '--out', out], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--out .*other-run already holds model\.json, model\.safetensors; effnet does not write over it unless told to: pass --resume to continue that run, --force to replace it/);
    expect(snapshot(out)).toEqual(before);
    const forced = cli(['train', '--data', join(dir, 'data'), '--model', 'effnet-shapes', '--epochs', '1', '--freeze', 'backbone', '--out', out, '--force'], dir);
    expect(forced.code).toBe(0);
    expect((await loadCheckpoint(out)).card.classes).toHaveLength(6);
  });

  it('eval without --heatmap writes nothing (it used to write confusion.png into the current directory)', async () => {
    const dir = tmp();
    await generateShapeDataset(join(dir, 'data'), { perClass: 2, size: 48, seed: 6 });
    writeFileSync(join(dir, 'confusion.png'), 'a picture of mine');
    const before = snapshot(dir);
    const r = cli(['eval', '--data', join(dir, 'data'), '--model', 'effnet-shapes'], dir);
    expect(r.code).toBe(0);
    expect(snapshot(dir)).toEqual(before);
    // Asked to write over a file that exists: refused, unless --force.
    const again = cli(['eval', '--data', join(dir, 'data'), '--model', 'effnet-shapes', '--heatmap', 'confusion.png'], dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/--heatmap confusion\.png is a file that already exists/);
    expect(snapshot(dir)).toEqual(before);
  });

  it('a checkpoint whose .json is older than its weights loads the card saved with the weights', async () => {
    const dir = tmp();
    const card = JSON.parse(readFileSync(fileURLToPath(new URL('../../zoo/assets/effnet-shapes.json', import.meta.url)), 'utf8'));
    const { tensors } = await (await import('@effnet/core')).readSafetensors(fileURLToPath(new URL(`../../zoo/assets/${card.weights}`, import.meta.url)));
    await saveCheckpoint(dir, 'model', tensors, { ...card, epoch: 7 });
    // A save killed between its two renames: the weights (and their embedded card) are new, the .json is old.
    writeFileSync(join(dir, 'model.json'), JSON.stringify({ ...card, weights: 'model.safetensors', epoch: 3 }));
    expect((await loadCheckpoint(dir)).card.epoch).toBe(7);
    expect((await loadCheckpoint(join(dir, 'model.json'))).card.epoch).toBe(7);
  });
});

describe('silent wrong results', () => {
  const dir = tmp();
  const g = buildEfficientNet(specFor('efficientnet_b0'), { numClasses: 4, inputResolution: 32 });
  const weights = join(dir, 'w.safetensors');
  const x = float32Tensor([1, 3, 32, 32], Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.round(Math.sin(i) * 8) / 4));

  it('a float16 .npy input gives the float32 logits (it was read as raw bits), and so does int64', async () => {
    await writeSafetensors(weights, randomWeights(g, 2));
    await writeNpy(join(dir, 'x32.npy'), x);
    writeFileSync(join(dir, 'x16.npy'), serializeNpy({ dtype: 'float16', shape: x.shape, data: Uint16Array.from(x.data as Float32Array, floatToHalf) }));
    writeFileSync(join(dir, 'x64.npy'), serializeNpy({ dtype: 'int64', shape: x.shape, data: BigInt64Array.from(x.data as Float32Array, (v) => BigInt(Math.round(v))) }));
    for (const f of ['x32', 'x16']) await run(['run', '--model', 'efficientnet_b0', '--weights', weights, '--input', join(dir, `${f}.npy`), '--output', join(dir, `${f}.out.npy`)]);
    const a = (await readNpy(join(dir, 'x32.out.npy'))).data;
    expect((await readNpy(join(dir, 'x16.out.npy'))).data).toEqual(a);
    await run(['run', '--model', 'efficientnet_b0', '--weights', weights, '--input', join(dir, 'x64.npy'), '--output', join(dir, 'x64.out.npy')]);
    expect((await readNpy(join(dir, 'x64.out.npy'))).shape).toEqual([1, 4]);
  });

  it('NaN in the input or the weights is an error naming it (exit 1), unless --allow-nan', async () => {
    const bad = Float32Array.from(x.data as Float32Array);
    bad[10] = Number.NaN;
    await writeNpy(join(dir, 'nan.npy'), float32Tensor(x.shape, bad));
    let r = cli(['run', '--model', 'efficientnet_b0', '--weights', weights, '--input', join(dir, 'nan.npy'), '--output', join(dir, 'n.npy')], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^effnet: input "input" holds NaN at flat index 10; .*--allow-nan\)\n$/);
    const w = randomWeights(g, 2);
    (w.get('blocks.1.0.conv_pw.weight')!.data as Float32Array)[3] = Number.POSITIVE_INFINITY;
    await writeSafetensors(join(dir, 'inf.safetensors'), w);
    r = cli(['run', '--model', 'efficientnet_b0', '--weights', join(dir, 'inf.safetensors'), '--input', join(dir, 'x32.npy'), '--output', join(dir, 'm.npy')], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/weight "blocks\.1\.0\.conv_pw\.weight" holds Infinity at flat index 3/);
    r = cli(['run', '--model', 'efficientnet_b0', '--weights', weights, '--input', join(dir, 'nan.npy'), '--output', join(dir, 'n.npy'), '--allow-nan'], dir);
    expect(r.code).toBe(0);
  });

  it('info --resolution 0 is a usage error naming the flag (it printed the 224 analysis)', () => {
    const r = cli(['info', 'efficientnet_b0', '--resolution', '0'], tmp());
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('effnet: invalid --resolution: 0 (an integer in [1, 8192])\n');
  });
});

describe('errors, not stack traces', () => {
  it('training on a folder with one class fails before anything is written', async () => {
    const dir = tmp();
    const data = join(dir, 'data');
    await generateShapeDataset(join(dir, 'all'), { perClass: 3, size: 48, seed: 7 });
    mkdirSync(data);
    execFileSync('cp', ['-r', join(dir, 'all', 'circle'), join(data, 'circle')]);
    const r = cli(['train', '--data', data, '--model', 'effnet-shapes', '--epochs', '1', '--out', join(dir, 'out')], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^effnet: .*data holds one class \(circle\); a classifier needs at least two class folders\n$/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('an error that is not the user\'s prints one line and how to see more; EFFNET_DEBUG=1 prints the stack', () => {
    const bug = new TypeError('Cannot read properties of undefined');
    expect(errorReport(bug, {}).text).toBe('Cannot read properties of undefined (an internal error: EFFNET_DEBUG=1 shows where; please report it)');
    expect(errorReport(bug, { EFFNET_DEBUG: '1' }).text).toMatch(/TypeError: Cannot read properties of undefined\n\s+at /);
  });
});

describe('messages that name the flag', () => {
  const cases: [string[], RegExp][] = [
    [['run', '--model', 'efficientnet_b0', '--input', 'x.npy', '--output', 'y.npy', '--threads=-3'], /^effnet: invalid --threads: -3 \(an integer in \[1, 1024\]\)\n$/],
    [['classify', 'x.png', '--model', 'effnet-shapes', '--topk', 'five'], /^effnet: invalid --topk: "five" \(an integer in \[1, 1000\]\)\n$/],
    [['train', '--data', 'd', '--model', 'effnet-shapes', '--epochs', '1', '--crop-scale', '0.5'], /^effnet: invalid --crop-scale: "0\.5" \(2 comma-separated values, each a number in \(0, 1\]\)\n$/],
    [['info', '--phi', 'big'], /^effnet: invalid --phi: "big" \(a number in \[-20, 20\]\)\n$/],
    [['info', 'efficientnet_b0', '--resolutoin', '64'], /^effnet: unknown option --resolutoin for effnet info; did you mean --resolution\?/],
  ];
  for (const [args, want] of cases)
    it(`effnet ${args.join(' ')}`, () => {
      const r = cli(args, tmp());
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(want);
    });

  it('a mis-shaped classifier.weight is reported against the shape its bias implies', async () => {
    const dir = tmp();
    const g = buildEfficientNet(specFor('efficientnet_b0'), { numClasses: 10, inputResolution: 32 });
    const w = randomWeights(g);
    w.set('classifier.weight', float32Tensor([10, 1280, 1]));
    await writeSafetensors(join(dir, 'w.safetensors'), w);
    await writeNpy(join(dir, 'x.npy'), float32Tensor([1, 3, 32, 32]));
    await expect(run(['run', '--model', 'efficientnet_b0', '--weights', join(dir, 'w.safetensors'), '--input', join(dir, 'x.npy'), '--output', join(dir, 'y.npy')])).rejects.toThrow(
      /^weights do not fit the graph:\n {2}mis-shaped: classifier\.weight expected \[10, 1280\] got \[10, 1280, 1\]$/,
    );
  });
});
