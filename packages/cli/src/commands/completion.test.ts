import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS, main } from '../cli.js';

const dir = mkdtempSync(join(tmpdir(), 'effnet-completion-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function script(shell: string): Promise<string> {
  const lines: string[] = [];
  expect(await main(['completion', shell], (s) => lines.push(s))).toBe(0);
  return lines.join('\n');
}

/** What bash completes for a command line (the words typed so far; the last one is being completed). */
function complete(file: string, words: string[]): string[] {
  const body = `source ${JSON.stringify(file)}; COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')}); COMP_CWORD=${words.length - 1}; _effnet; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync('bash', ['-c', body], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean);
}

describe('effnet completion', () => {
  it('writes a bash script that completes commands, sub-commands, options, their values and model names', async () => {
    const file = join(dir, 'effnet.bash');
    writeFileSync(file, await script('bash'));
    expect(complete(file, ['effnet', 'tr'])).toEqual(['train']);
    expect(complete(file, ['effnet', ''])).toEqual(expect.arrayContaining([...new Set(COMMANDS.map((c) => c.name.split(' ')[0]!))]));
    expect(complete(file, ['effnet', 'zoo', 'l'])).toEqual(['list']);
    expect(complete(file, ['effnet', 'train', '--fin'])).toEqual(['--find-lr']);
    expect(complete(file, ['effnet', 'train', '--task', ''])).toEqual(expect.arrayContaining(['classification', 'detection']));
    expect(complete(file, ['effnet', 'train', '--optimizer', 'a']).sort()).toEqual(['adam', 'adamw']);
    expect(complete(file, ['effnet', 'classify', '--model', 'effnet-sh'])).toContain('effnet-shapes');
    expect(complete(file, ['effnet', 'detect', '--model', 'tf_efficientdet_d'])).toContain('tf_efficientdet_d0');
    expect(complete(file, ['effnet', 'info', 'efficientnet_b'])).toEqual([]); // a positional: files, and there are none here
    // Every command's every option is offered after its name.
    for (const c of COMMANDS) {
      const words = ['effnet', ...c.name.split(' '), '--'];
      expect(complete(file, words), c.name).toEqual(expect.arrayContaining(Object.keys(c.options).map((o) => `--${o}`)));
    }
  });

  it('writes a zsh script through bashcompinit, and refuses other shells by name', async () => {
    const zsh = await script('zsh');
    expect(zsh.split('\n')[0]).toBe('#compdef effnet');
    expect(zsh).toContain('bashcompinit');
    expect(zsh).toContain('complete -o filenames -F _effnet effnet');
    await expect(main(['completion', 'fish'], () => {})).rejects.toThrow(/unknown shell "fish"; give one of bash, zsh/);
  });
});
