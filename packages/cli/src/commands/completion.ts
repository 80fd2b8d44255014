import { DETECTORS, VARIANTS } from '@effnet/core';
import { type Command, defineCommand, UsageError } from '../args.js';

const SHELLS = ['bash', 'zsh'] as const;
type Shell = (typeof SHELLS)[number];

/** Options whose values are model names (variants, detectors, zoo entries) rather than files. */
const MODEL_OPTIONS = new Set(['model', 'backbone']);

export interface CompletionData {
  /** Command words: "zoo list" is the word "zoo" followed by "list". */
  commands: string[];
  /** For each command (as `effnet <command>` spells it), its option flags and the fixed values of those that have some. */
  options: Record<string, { flags: string[]; choices: Record<string, string[]>; models: string[] }>;
  models: string[];
}

/** What the completion scripts offer, from the command declarations, the variant and detector tables and the zoo. */
export function completionData(commands: readonly Command[], zooNames: readonly string[]): CompletionData {
  const options: CompletionData['options'] = {};
  for (const c of commands) {
    const flags = ['--help'];
    const choices: Record<string, string[]> = {};
    const models: string[] = [];
    for (const [name, spec] of Object.entries(c.options)) {
      flags.push(`--${name}`);
      if (spec.type === 'boolean' && !name.startsWith('no-')) continue;
      if (spec.type === 'string' && spec.choices) choices[`--${name}`] = [...spec.choices];
      if (MODEL_OPTIONS.has(name)) models.push(`--${name}`);
    }
    options[c.name] = { flags, choices, models };
  }
  const models = [...new Set([...VARIANTS.map((v) => v.name), ...DETECTORS.map((d) => d.name), ...zooNames])].sort();
  return { commands: [...new Set(commands.map((c) => c.name.split(' ')[0]!))], options, models };
}

const quote = (words: readonly string[]): string => words.map((w) => w.replace(/[^\w.@+,:/=-]/g, '')).join(' ');

/** A bash completion function (also sourced by zsh through bashcompinit). */
export function bashCompletion(d: CompletionData): string {
  const cases = Object.entries(d.options).map(([name, o]) => {
    const key = name.replace(' ', '_');
    const choiceCases = Object.entries(o.choices).map(([flag, values]) => `        ${flag}) COMPREPLY=($(compgen -W "${quote(values)}" -- "$cur")); return ;;`);
    const modelCase = o.models.length ? [`        ${o.models.join('|')}) COMPREPLY=($(compgen -W "$models" -- "$cur") $(compgen -f -- "$cur")); return ;;`] : [];
    return [`    ${key})`, '      case "$prev" in', ...choiceCases, ...modelCase, '      esac', `      flags="${quote(o.flags)}" ;;`].join('\n');
  });
  const groups = [...new Set(Object.keys(d.options).filter((n) => n.includes(' ')).map((n) => n.split(' ')[0]!))];
  const groupLines = groups.map((g) => {
    const subs = Object.keys(d.options).filter((n) => n.startsWith(`${g} `)).map((n) => n.split(' ')[1]!);
    return `  if [[ "$cmd" == ${g} ]]; then if (( COMP_CWORD == 2 )); then COMPREPLY=($(compgen -W "${quote(subs)}" -- "$cur")); return; fi; cmd="${g}_\${COMP_WORDS[2]}"; fi`;
  });
  return `# effnet completion for bash (effnet completion bash > ~/.local/share/bash-completion/completions/effnet)
_effnet() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd="\${COMP_WORDS[1]}" flags
  local models="${quote(d.models)}"
  if (( COMP_CWORD == 1 )); then COMPREPLY=($(compgen -W "${quote(d.commands)} --help" -- "$cur")); return; fi
${groupLines.join('\n')}
  case "$cmd" in
${cases.join('\n')}
    *) return ;;
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$flags" -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
}
complete -o filenames -F _effnet effnet
`;
}

/** zsh: the bash function through bashcompinit, so that both shells complete the same words. */
export function zshCompletion(d: CompletionData): string {
  return `#compdef effnet
# effnet completion for zsh (effnet completion zsh > "\${fpath[1]}/_effnet", or eval "$(effnet completion zsh)" in ~/.zshrc)
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(d).split('\n').slice(1).join('\n')}`;
}

export function completionCommand(commands: () => readonly Command[]) {
  return defineCommand({
    name: 'completion',
    summary: 'a shell completion script: commands, options, their values, variants and zoo names',
    usage: 'effnet completion bash|zsh',
    positionals: { name: 'SHELL', description: 'bash or zsh', min: 1, max: 1 },
    options: { registry: { type: 'string', valueName: 'FILE', description: 'also complete the entries of this registry file' } },
    examples: ['effnet completion bash > ~/.local/share/bash-completion/completions/effnet', 'eval "$(effnet completion zsh)"   # in ~/.zshrc'],
    notes: ['Model names are those known when the script is written: write it again after adding a registry (EFFNET_REGISTRY).'],
    async run({ values, positionals }, io) {
      const shell = positionals[0] as Shell;
      if (!SHELLS.includes(shell)) throw new UsageError(`effnet completion: unknown shell "${positionals[0]}"; give one of ${SHELLS.join(', ')}`);
      const { Registry } = await import('@effnet/zoo');
      const registry = await Registry.load({ registry: values.registry });
      const data = completionData(commands(), registry.entries().map((e) => e.name));
      io.out(shell === 'bash' ? bashCompletion(data) : zshCompletion(data));
      return 0;
    },
  });
}
