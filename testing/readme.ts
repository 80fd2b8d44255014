/**
 * The README's code blocks, as tests: every ```ts and ```sh block is run as written, unless the HTML comment right
 * above it says why not (`<!-- readme-test: skip <reason> -->`). A block may get a prelude that the reader does not
 * need to see (`<!-- readme-test: prelude <file in testing/readme/> -->`): a TypeScript file run before a ts block
 * (its top-level names are in scope), or a shell script sourced before an sh block (to create the files the block
 * reads). Blocks run in a fresh temporary directory, offline (EFFNET_OFFLINE=1), with the zoo cache in it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from './peers.js';

export interface ReadmeBlock {
  /** 1-based line of the opening fence. */
  line: number;
  lang: 'ts' | 'sh';
  code: string;
  skip?: string;
  prelude?: string;
}

/** Every ts and sh block of a markdown text, with its readme-test directives. */
export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n');
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(ts|typescript|sh|bash)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    let j = start - 1;
    while (j >= 0 && lines[j]!.trim() === '') j--;
    const directive = /^<!--\s*readme-test:\s*(skip|prelude)\s+(.*?)\s*-->$/.exec(lines[j]?.trim() ?? '');
    const lang = fence[1] === 'ts' || fence[1] === 'typescript' ? 'ts' : 'sh';
    blocks.push({ line: start + 1, lang, code: body.join('\n'), ...(directive?.[1] === 'skip' ? { skip: directive[2]! } : {}), ...(directive?.[1] === 'prelude' ? { prelude: directive[2]! } : {}) });
  }
  return blocks;
}

export interface BlockRun {
  status: number | null;
  stdout: string;
  stderr: string;
  dir: string;
}

const transpile = (code: string) => ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;

/** Runs one block in a fresh directory; ts blocks as an ES module that resolves @effnet/* from the repository. */
export function runReadmeBlock(block: ReadmeBlock, o: { timeoutMs?: number } = {}): BlockRun {
  const dir = mkdtempSync(join(tmpdir(), 'effnet-readme-'));
  // As in a user's project: the packages resolve from ./node_modules (for `node -e "import('@effnet/tasks')"`).
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const env = { ...process.env, EFFNET_OFFLINE: '1', EFFNET_CACHE: join(dir, 'cache'), EFFNET_DEBUG: '1', PATH: `${join(REPO_ROOT, 'node_modules', '.bin')}:${process.env.PATH}` };
  const preludeFile = block.prelude ? join(REPO_ROOT, 'testing', 'readme', block.prelude) : undefined;
  let r;
  if (block.lang === 'ts') {
    // The module lives inside the repository so that `import '@effnet/core'` resolves; it works in `dir`.
    const scratch = join(REPO_ROOT, 'testing', 'readme', '.run');
    mkdirSync(scratch, { recursive: true });
    const file = join(scratch, `block-${block.line}-${process.pid}.mjs`);
    const prelude = preludeFile ? readFileSync(preludeFile, 'utf8') : '';
    writeFileSync(file, transpile(`${prelude}\n${block.code}\n`));
    r = spawnSync(process.execPath, [file], { cwd: dir, env, encoding: 'utf8', timeout: o.timeoutMs ?? 180_000 });
  } else {
    // `npx effnet` is this repository's CLI (npx in a directory outside the project would look in the registry).
    const shim = `npx() { if [ "$1" = effnet ]; then shift; node ${JSON.stringify(join(REPO_ROOT, 'packages', 'cli', 'bin', 'effnet.js'))} "$@"; else command npx "$@"; fi; }\n`;
    const script = `set -euo pipefail\n${shim}${preludeFile ? `source ${JSON.stringify(preludeFile)}\n` : ''}${block.code}\n`;
    r = spawnSync('bash', ['-c', script], { cwd: dir, env, encoding: 'utf8', timeout: o.timeoutMs ?? 180_000 });
  }
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', dir };
}
