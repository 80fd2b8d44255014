/**
 * The README's code blocks run as written (testing/readme.ts says how blocks are found, skipped with a reason, or
 * given a prelude), so that the README cannot drift from the code again.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../testing/peers.js';
import { readmeBlocks, runReadmeBlock } from '../../../testing/readme.js';

const blocks = readmeBlocks(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));

describe('README code blocks', () => {
  it('every ts/sh block runs, or says why not; every prelude exists', () => {
    expect(blocks.length).toBeGreaterThan(5);
    for (const b of blocks) {
      if (b.skip !== undefined) expect(b.skip.length, `line ${b.line}: a skip needs a reason`).toBeGreaterThan(3);
      if (b.prelude) expect(existsSync(join(REPO_ROOT, 'testing', 'readme', b.prelude)), `line ${b.line}: prelude ${b.prelude}`).toBe(true);
    }
  });
  for (const b of blocks.filter((x) => x.skip === undefined)) {
    it(`line ${b.line} (${b.lang}) runs as written`, () => {
      const r = runReadmeBlock(b);
      expect(r.status, `README.md line ${b.line} failed in ${r.dir}:\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-1000)}`).toBe(0);
    });
  }
});
