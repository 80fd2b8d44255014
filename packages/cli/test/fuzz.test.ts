/**
 * Hostile inputs, generated: the CLI's argument parsing and its file readers, driven by fast-check. Whatever comes
 * in, a command either works or fails with an EffnetError (exit code 1, or 2 for a usage mistake) whose message names
 * the input at fault, never a stack trace or an "internal error"; and nothing changes on disk except the output the
 * command was asked to write.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientNet, float32Tensor, randomWeights, serializeNpy, serializeSafetensors, specFor } from '@effnet/core';
import fc from 'fast-check';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { snapshot } from '../../../testing/files.js';
import { COMMANDS, errorReport, main } from '../src/cli.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'effnet-fuzz-'));

interface Outcome {
  code: number;
  text: string;
}

async function attempt(args: string[]): Promise<Outcome> {
  try {
    const code = await main(args, () => undefined, { write: () => true });
    return { code, text: '' };
  } catch (e) {
    return { code: errorReport(e, {}).exitCode, text: errorReport(e, {}).text };
  }
}

/** What every outcome must be: a clean success, or a user-facing error (no stack, no internal error). */
function checkOutcome(o: Outcome, args: string[]): void {
  const where = `effnet ${args.map((a) => JSON.stringify(a)).join(' ')}`;
  expect([0, 1, 2], where).toContain(o.code);
  expect(o.text, where).not.toMatch(/\n\s+at /);
  expect(o.text, where).not.toMatch(/internal error/);
}

const hostile = fc.oneof(
  fc.constantFrom('', ' ', '-1', '0', '-0', 'NaN', 'Infinity', '1e309', '0x10', '1,2,3', '3.5', '--', '-', '../../etc/passwd', '\u0000', 'é', 'a'.repeat(3000), '1e-400', '99999999999999999999'),
  fc.string({ maxLength: 20 }),
  fc.double({ noNaN: false }).map(String),
  fc.integer({ min: -1e9, max: 1e9 }).map(String),
);

/** Every declared option of every command (so the fuzz follows the commands as they change). */
const commandArgs = fc.constantFrom(...COMMANDS).chain((c) =>
  fc
    .tuple(
      fc.subarray(Object.entries(c.options), { maxLength: Math.min(5, Object.keys(c.options).length) }),
      fc.array(hostile, { maxLength: 6 }),
      fc.array(hostile, { maxLength: 2 }),
      fc.boolean(),
    )
    .map(([picked, values, positionals, unknown]) => {
      const args = [...c.name.split(' ')];
      // Required options are always there, so that runs get past "needs --x" to the values themselves.
      const opts = [...Object.entries(c.options).filter(([, o]) => o.required), ...picked.filter(([, o]) => !o.required)];
      opts.forEach(([name, o], i) => {
        if (o.type === 'boolean') args.push(`--${name}`);
        else args.push(`--${name}`, values[i % Math.max(1, values.length)] ?? '');
      });
      if (unknown) args.push('--no-such-option');
      return [...args, ...positionals.map((p) => `pos-${p}`)];
    }),
);

describe('the CLI under generated hostile arguments', () => {
  it('every command answers hostile flags, values and positionals with a one-line error or a result, and a failure writes nothing', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'keep.txt'), 'mine');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      await fc.assert(
        fc.asyncProperty(commandArgs, async (args) => {
          // Anything that could start real work is kept to paths that do not exist: no run may train or download.
          if (args[0] === 'demo' || args[0] === 'pull') args.push('--offline');
          const before = snapshot(dir, { dirs: true });
          const o = await attempt(args);
          checkOutcome(o, args);
          const where = `effnet ${args.map((a) => JSON.stringify(a)).join(' ')}`;
          if (o.code === 2) expect(o.text, where).toMatch(/--|effnet|command/);
          if (o.code !== 0) expect(o.text.trim(), where).not.toContain('\n');
          const after = snapshot(dir, { dirs: true });
          for (const [path, bytes] of before) expect(after.get(path), `${where}: ${path}`).toBe(bytes);
          // New files: none after a failure; after a success only under a path the command was given.
          for (const path of after.keys())
            if (!before.has(path)) {
              expect(o.code, `${where} failed but created ${path}`).toBe(0);
              expect(args.some((a) => a.length > 0 && path.includes(a)), `${where} created ${path}, which it was not asked to write`).toBe(true);
            }
        }),
        { numRuns: 150 },
      );
    } finally {
      process.chdir(cwd);
    }
  });
});

/** Ways to spoil a valid file: truncate it, flip bytes, or replace it with noise. */
function spoil(valid: Uint8Array) {
  return fc.oneof(
    fc.nat({ max: valid.length }).map((n) => valid.slice(0, n)),
    fc.array(fc.tuple(fc.nat({ max: Math.max(0, valid.length - 1) }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }).map((edits) => {
      const out = Uint8Array.from(valid);
      for (const [i, b] of edits) out[i] = b;
      return out;
    }),
    fc.uint8Array({ maxLength: 512 }),
  );
}

describe('the file readers under generated hostile files', () => {
  const dir = tmp();
  const g = buildEfficientNet(specFor('efficientnet_b0'), { numClasses: 3, inputResolution: 32 });
  const npy = serializeNpy(float32Tensor([1, 3, 32, 32]));
  const weights = serializeSafetensors(randomWeights(g));
  const good = join(dir, 'good.npy');
  writeFileSync(good, npy);
  writeFileSync(join(dir, 'good.safetensors'), weights);

  /** Runs `args` with the hostile file written to `file`; the only change allowed on disk is `output`. */
  async function hostileFile(file: string, bytes: Uint8Array, args: string[], output?: string): Promise<void> {
    writeFileSync(file, bytes);
    const before = snapshot(dir);
    const o = await attempt(args);
    checkOutcome(o, args);
    if (o.code !== 0) expect(o.text, `effnet ${args.join(' ')}`).toMatch(/\S/);
    const after = snapshot(dir);
    for (const [p, b] of after) if (p !== output) expect(before.get(p), `${p} changed`).toBe(b);
  }

  it('.npy inputs', async () => {
    await fc.assert(
      fc.asyncProperty(spoil(npy), async (bytes) => {
        const out = join(dir, 'out.npy');
        await hostileFile(join(dir, 'in.npy'), bytes, ['run', '--model', 'efficientnet_b0', '--input', join(dir, 'in.npy'), '--output', out, '--force'], out);
      }),
      { numRuns: 25 },
    );
  });

  it('weight files (safetensors, and anything else in their place)', async () => {
    await fc.assert(
      fc.asyncProperty(spoil(weights), async (bytes) => {
        const out = join(dir, 'w-out.npy');
        await hostileFile(join(dir, 'w.safetensors'), bytes, ['run', '--model', 'efficientnet_b0', '--weights', join(dir, 'w.safetensors'), '--input', good, '--output', out, '--force'], out);
      }),
      { numRuns: 25 },
    );
  });

  it('PyTorch checkpoints for convert', async () => {
    const pth = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
    await fc.assert(
      fc.asyncProperty(fc.oneof(spoil(pth), spoil(weights)), async (bytes) => {
        const out = join(dir, 'converted.safetensors');
        await hostileFile(join(dir, 'x.pth'), bytes, ['convert', join(dir, 'x.pth'), '-o', out, '--force'], out);
      }),
      { numRuns: 25 },
    );
  });

  it('registry files', async () => {
    const valid = new TextEncoder().encode(JSON.stringify({ entries: [{ name: 'a.b', arch: 'efficientnet_b0', family: 'timm', format: 'safetensors', url: 'https://x/y', sha256: 'a'.repeat(64) }] }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(spoil(valid), fc.json().map((j) => new TextEncoder().encode(j))), async (bytes) => {
        await hostileFile(join(dir, 'registry.json'), bytes, ['zoo', 'list', '--registry', join(dir, 'registry.json'), '--cache-dir', join(dir, 'no-cache')]);
      }),
      { numRuns: 25 },
    );
  });

  it('COCO annotation and detection files', async () => {
    const gt = new TextEncoder().encode(JSON.stringify({ images: [{ id: 1, width: 10, height: 10 }], annotations: [{ id: 1, image_id: 1, category_id: 1, bbox: [1, 1, 3, 3], area: 9, iscrowd: 0 }], categories: [{ id: 1, name: 'a' }] }));
    const dt = new TextEncoder().encode(JSON.stringify([{ image_id: 1, category_id: 1, bbox: [1, 1, 3, 3], score: 0.9 }]));
    writeFileSync(join(dir, 'dt.json'), dt);
    await fc.assert(
      fc.asyncProperty(fc.oneof(spoil(gt), fc.json().map((j) => new TextEncoder().encode(j))), async (bytes) => {
        await hostileFile(join(dir, 'gt.json'), bytes, ['coco-eval', '--gt', join(dir, 'gt.json'), '--dt', join(dir, 'dt.json')]);
      }),
      { numRuns: 25 },
    );
  });

  it('images for classify', async () => {
    const png = new Uint8Array(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).png().toBuffer());
    await fc.assert(
      fc.asyncProperty(spoil(png), async (bytes) => {
        await hostileFile(join(dir, 'img.png'), bytes, ['classify', join(dir, 'img.png'), '--model', 'effnet-shapes', '--skip-errors']);
      }),
      { numRuns: 25 },
    );
  });
});
