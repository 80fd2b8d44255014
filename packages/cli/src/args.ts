/**
 * Commands as data: each command declares its options (type, default, bounds, help text) and examples; this module
 * parses argv against that declaration (node:util parseArgs underneath), validates every number with core's one
 * helper (so an error names the flag), answers --help, and suggests the closest option for a typo.
 */
import { parseArgs } from 'node:util';
import { closestNames, EffnetError, type NumberRule, parseNumber, parseNumberList } from '@effnet/core';

/** A mistake in how the command was called (exit code 2): an unknown option, a missing argument, a bad value. */
export class UsageError extends EffnetError {
  override name = 'UsageError';
  readonly exitCode = 2;
}

interface OptionBase {
  description: string;
  short?: string;
  /** Shown in help: --data DIR. */
  valueName?: string;
  /** Shown in help as (required); checked before the command runs. */
  required?: boolean;
}
export type OptionSpec =
  | (OptionBase & { type: 'string'; default?: string; choices?: readonly string[] })
  | (OptionBase & { type: 'strings' })
  | (OptionBase & { type: 'number'; default?: number } & NumberRule)
  | (OptionBase & { type: 'numbers'; count?: number } & NumberRule)
  | (OptionBase & { type: 'boolean' });

type ValueOf<O> = O extends { type: 'number' }
  ? number
  : O extends { type: 'numbers' }
    ? number[]
    : O extends { type: 'boolean' }
      ? boolean
      : O extends { type: 'strings' }
        ? string[]
        : string;
export type Values<S extends Record<string, OptionSpec>> = {
  [K in keyof S]: S[K] extends { type: 'boolean' } | { type: 'strings' } | { default: unknown } | { required: true } ? ValueOf<S[K]> : ValueOf<S[K]> | undefined;
};

export interface Io {
  /** One line of the command's result on stdout. */
  out: (line: string) => void;
  /** Progress and notes (stderr). */
  progress: { write(s: string): unknown; isTTY?: boolean; columns?: number };
}

export interface Command<S extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** After "Usage: ", e.g. "effnet run --model M --input x.npy --output y.npy [options]". */
  usage: string;
  /** What the positionals are, for help. */
  positionals?: { name: string; description: string; min?: number; max?: number };
  options: S;
  examples: readonly string[];
  /** Extra help text after the options. */
  notes?: readonly string[];
  run(args: { values: Values<S>; positionals: string[] }, io: Io): Promise<number>;
}

/** Declares a command with its option types inferred. */
export function defineCommand<S extends Record<string, OptionSpec>>(c: Command<S>): Command<S> {
  return c;
}

/** Options every command has. */
const HELP: OptionSpec = { type: 'boolean', short: 'h', description: 'show this help' };

/** The closest of `known` to `word` when it is close enough to be a likely typo. */
export function closest(word: string, known: readonly string[]): string | undefined {
  return closestNames(word, known, { max: 1 })[0];
}

function flag(name: string, o: OptionSpec): string {
  const value = o.type === 'boolean' ? '' : ` ${o.valueName ?? (o.type === 'number' ? 'N' : o.type === 'numbers' ? 'A,B' : 'VALUE')}`;
  return `${o.short ? `-${o.short}, ` : ''}--${name}${value}`;
}

function defaultText(o: OptionSpec): string {
  const parts: string[] = [];
  if ('choices' in o && o.choices) parts.push(`one of ${o.choices.join(', ')}`);
  if ('default' in o && o.default !== undefined) parts.push(`default ${o.default}`);
  if (o.required) parts.push('required');
  return parts.length ? ` (${parts.join('; ')})` : '';
}

/** The text `effnet <command> --help` prints. */
export function helpText(c: Command): string {
  const rows = Object.entries(c.options).map(([name, o]) => [flag(name, o), o.description + defaultText(o)] as const);
  rows.push([flag('help', HELP), HELP.description]);
  const width = Math.min(30, Math.max(...rows.map((r) => r[0].length)) + 2);
  const lines = [`effnet ${c.name}: ${c.summary}`, '', `Usage: ${c.usage}`];
  if (c.positionals) lines.push('', `  ${c.positionals.name.padEnd(width)}${c.positionals.description}`);
  lines.push('', 'Options:');
  for (const [f, d] of rows) lines.push(f.length + 2 > width ? `  ${f}\n  ${' '.repeat(width)}${d}` : `  ${f.padEnd(width)}${d}`);
  if (c.notes?.length) lines.push('', ...c.notes);
  if (c.examples.length) lines.push('', 'Examples:', ...c.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

function parseValue(name: string, o: OptionSpec, raw: string | boolean | string[] | undefined): unknown {
  const flagName = `--${name}`;
  switch (o.type) {
    case 'boolean':
      return raw ?? false;
    case 'strings':
      return raw ?? [];
    case 'string':
      if (raw === undefined) return o.default;
      if (o.choices && !o.choices.includes(raw as string)) {
        const near = closest(raw as string, o.choices);
        throw new UsageError(`invalid ${flagName}: "${raw}" (one of ${o.choices.join(', ')})${near ? `; did you mean "${near}"?` : ''}`);
      }
      return raw;
    case 'number':
      return raw === undefined ? o.default : asUsage(() => parseNumber(flagName, raw as string, o));
    case 'numbers':
      return raw === undefined ? undefined : asUsage(() => parseNumberList(flagName, raw as string, o, o.count));
  }
}

/** A flag's bad value is a usage mistake (exit code 2), whichever helper found it. */
function asUsage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw e instanceof EffnetError && !(e instanceof UsageError) ? new UsageError(e.message) : e;
  }
}

/**
 * Parses a command's arguments. `--help` returns null (the caller prints help). Unknown options, missing values and
 * invalid numbers are UsageErrors naming the flag.
 */
export function parseCommandArgs<S extends Record<string, OptionSpec>>(c: Command<S>, argv: string[]): { values: Values<S>; positionals: string[] } | null {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(c.options)) options[name] = { type: o.type === 'boolean' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}), ...(o.type === 'strings' ? { multiple: true } : {}) };
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageFromParseArgs(c, e as Error & { code?: string });
  }
  if (parsed.values.help) return null;
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(c.options)) {
    values[name] = parseValue(name, o, parsed.values[name] as string | boolean | string[] | undefined);
    if (o.required && (values[name] === undefined || values[name] === '')) throw new UsageError(`effnet ${c.name} needs ${o.short ? `-${o.short}/` : ""}--${name}${o.valueName ? ` ${o.valueName}` : ''} (${o.description}); see effnet ${c.name} --help`);
  }
  const p = c.positionals;
  const n = parsed.positionals.length;
  if (!p && n) {
    const near = closest(parsed.positionals[0]!, Object.keys(c.options).map((k) => `--${k}`));
    throw new UsageError(`effnet ${c.name} takes no positional argument, got "${parsed.positionals[0]}"${near ? `; did you mean ${near}?` : ''}; see effnet ${c.name} --help`);
  }
  if (p && p.min !== undefined && n < p.min) throw new UsageError(`effnet ${c.name} needs ${p.min === 1 ? 'a' : `at least ${p.min}`} ${p.name} (${p.description}); see effnet ${c.name} --help`);
  if (p && p.max !== undefined && n > p.max) throw new UsageError(`effnet ${c.name} takes at most ${p.max} ${p.name}, got ${n}: ${parsed.positionals.join(' ')}`);
  return { values: values as Values<S>, positionals: parsed.positionals };
}

function usageFromParseArgs(c: Command, e: Error & { code?: string }): Error {
  if (!e.code?.startsWith('ERR_PARSE_ARGS')) return e;
  const unknown = /Unknown option '(-{1,2}[^']+)'/.exec(e.message)?.[1];
  if (unknown) {
    const known = Object.keys(c.options).map((k) => `--${k}`);
    const near = closest(unknown.split('=')[0]!, known);
    return new UsageError(`unknown option ${unknown} for effnet ${c.name}${near ? `; did you mean ${near}?` : ''} (see effnet ${c.name} --help)`);
  }
  const missing = /Option '(?:-\w, )?(--[^ ']+)[^']*' argument missing/.exec(e.message)?.[1];
  if (missing) return new UsageError(`${missing} needs a value (see effnet ${c.name} --help)`);
  const boolValue = /Option '(?:-\w, )?(--[^ ']+)' does not take an argument/.exec(e.message)?.[1];
  if (boolValue) return new UsageError(`${boolValue} is a switch and takes no value (see effnet ${c.name} --help)`);
  return new UsageError(`${e.message.split('\n')[0]} (see effnet ${c.name} --help)`);
}
