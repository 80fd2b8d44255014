import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VARIANTS } from '@effnet/core';
import { describe, expect, it } from 'vitest';
import { VARIANT_COUNTS } from './variant-counts.js';
import { computeVariantSummaries, variantSummaries } from './variants.js';

const bin = fileURLToPath(new URL('../../bin/effnet.js', import.meta.url));

describe('effnet variants', () => {
  it("the recorded counts are the graphs' own, for every variant", () => {
    expect(variantSummaries()).toEqual(computeVariantSummaries());
    expect(Object.keys(VARIANT_COUNTS).sort()).toEqual(VARIANTS.map((v) => v.name).sort());
  });

  // Start-up: the heavy packages are imported by the commands that use them, never to print help or the variant table.
  it.each([['--help'], ['variants'], ['classify', '--help']])('effnet %s loads no runtime, image library or task package', (...argv) => {
    const dir = mkdtempSync(join(tmpdir(), 'effnet-startup-'));
    const log = join(dir, 'modules.log');
    const hooks = join(dir, 'hooks.mjs');
    const register = join(dir, 'register.mjs');
    writeFileSync(hooks, `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`);
    writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
    const r = spawnSync(process.execPath, ['--import', register, bin, ...argv], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const loaded = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    expect(loaded.some((u) => u.includes('/packages/cli/'))).toBe(true);
    const heavy = loaded.filter((u) => /onnxruntime|@tensorflow|sharp|packages\/(tasks|zoo|backend-onnx|backend-tfjs)\/dist\/index|packages\/serve\/dist\/index/.test(u));
    expect(heavy).toEqual([]);
  });
});
