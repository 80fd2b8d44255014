import { readFile } from 'node:fs/promises';
import { closestNames } from '@effnet/core';
import { delimiter, dirname, resolve as resolvePath } from 'node:path';
import { RegistryError, type RegistryProblem, UnknownModelError } from '../errors.js';
import { BUILTIN_ENTRIES } from './builtin.js';
import { type RegistryEntry, USER_FORMATS, validateEntry } from './schema.js';

export interface RegistryOptions {
  /** Your registry files (JSON, `{"entries": [...]}`), on top of EFFNET_REGISTRY's and the built-in one. */
  registry?: string | readonly string[];
  /** Environment to read EFFNET_REGISTRY from (default: process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Include the built-in entries (default true). */
  builtin?: boolean;
}

/**
 * Parses a registry document. Every entry is validated; all problems are reported at once, each naming the entry and
 * the field. Relative local paths in `url` are taken relative to `baseDir`.
 */
export function parseRegistry(doc: unknown, file: string, baseDir = '.'): RegistryEntry[] {
  const problems: RegistryProblem[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || !Array.isArray((doc as { entries?: unknown }).entries)) {
    throw new RegistryError(file, [{ where: '(top level)', message: 'must be an object {"entries": [ ... ]}' }]);
  }
  for (const k of Object.keys(doc)) if (k !== 'entries' && k !== '$schema' && k !== 'description') problems.push({ where: k, message: 'unknown top-level field (known: entries)' });
  const entries: RegistryEntry[] = [];
  const seen = new Map<string, number>();
  (doc as { entries: unknown[] }).entries.forEach((raw, i) => {
    const r = validateEntry(raw, `entries[${i}]`, { requireSha256: true, formats: USER_FORMATS, baseDir, origin: file });
    problems.push(...r.problems);
    if (!r.entry) return;
    const prev = seen.get(r.entry.name);
    if (prev !== undefined) problems.push({ where: `entries[${i}].name`, message: `"${r.entry.name}" is already used by entries[${prev}]` });
    seen.set(r.entry.name, i);
    entries.push(r.entry);
  });
  if (problems.length) throw new RegistryError(file, problems);
  return entries;
}

/** Reads and validates a registry file. */
export async function readRegistryFile(file: string): Promise<RegistryEntry[]> {
  const path = resolvePath(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new RegistryError(path, [{ where: '(file)', message: `cannot be read: ${(e as Error).message}` }]);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new RegistryError(path, [{ where: '(file)', message: `is not valid JSON: ${(e as Error).message}` }]);
  }
  return parseRegistry(doc, path, dirname(path));
}

/** The registry files in effect: EFFNET_REGISTRY (path-list separated), then the ones passed explicitly. */
export function registryFiles(o: RegistryOptions = {}): string[] {
  const env = o.env ?? process.env;
  const fromEnv = (env.EFFNET_REGISTRY ?? '').split(delimiter).filter(Boolean);
  const explicit = o.registry === undefined ? [] : typeof o.registry === 'string' ? [o.registry] : [...o.registry];
  return [...fromEnv, ...explicit];
}

/** The built-in entries plus yours. A later entry with the same name replaces an earlier one. */
export class Registry {
  private readonly byName = new Map<string, RegistryEntry>();

  constructor(
    entries: readonly RegistryEntry[],
    /** 'builtin' and the files read, in order. */
    readonly sources: readonly string[] = ['builtin'],
  ) {
    for (const e of entries) this.byName.set(e.name, e);
  }

  /** The built-in registry, EFFNET_REGISTRY's files and `registry`, validated. */
  static async load(o: RegistryOptions = {}): Promise<Registry> {
    const files = registryFiles(o);
    const entries: RegistryEntry[] = o.builtin === false ? [] : [...BUILTIN_ENTRIES];
    // Not push(...list): a registry of 150k entries would overflow the call stack.
    for (const f of files) for (const e of await readRegistryFile(f)) entries.push(e);
    return new Registry(entries, [...(o.builtin === false ? [] : ['builtin']), ...files.map((f) => resolvePath(f))]);
  }

  /** Every entry, built-in first, in registry order. */
  entries(): RegistryEntry[] {
    return [...this.byName.values()];
  }

  has(name: string): boolean {
    return this.find(name) !== undefined;
  }

  /**
   * The entry for a name. A bare architecture name (`efficientnet_b0`) means its first listed tag, as in timm
   * (`efficientnet_b0.ra_in1k`).
   */
  find(name: string): RegistryEntry | undefined {
    const exact = this.byName.get(name);
    if (exact) return exact;
    if (!name.includes('.')) for (const e of this.byName.values()) if (e.name.startsWith(`${name}.`)) return e;
    return undefined;
  }

  /** Like find, but an unknown name is an UnknownModelError with the closest names. */
  get(name: string): RegistryEntry {
    const e = this.find(name);
    if (e) return e;
    throw new UnknownModelError(name, this.suggest(name), this.sources);
  }

  /** Up to five known names close to `name`. */
  suggest(name: string): string[] {
    const arch = name.split('.')[0]!;
    const names = [...this.byName.keys()];
    const sameArch = names.filter((n) => n.startsWith(`${arch}.`));
    const near = closestNames(name, names, { max: names.length, ratio: 1 / 5 });
    return [...new Set([...near, ...sameArch])].slice(0, 5);
  }
}
