/**
 * Files effnet writes and reads as a whole: atomic writes (a reader sees the old file or the whole new one), and the
 * rule that no command writes over a file or directory it did not create unless it is told to (--force, --resume).
 */
import { EffnetError, TensorFileError } from '../errors.js';

/** A file or directory that could not be written. Names it and the cause. */
export class OutputFileError extends EffnetError {
  override name = 'OutputFileError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`cannot write "${file}": ${reason}`);
  }
}

/** An output that exists and was not made by this command: effnet does not replace it unless told to. */
export class OutputExistsError extends EffnetError {
  override name = 'OutputExistsError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

const fs = () => import('node:fs/promises');

/** Reads a whole file; failures become TensorFileError naming it. */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  try {
    return await (await fs()).readFile(path);
  } catch (e) {
    throw new TensorFileError(path, `cannot read the file: ${(e as Error)?.message ?? String(e)}`);
  }
}

/** Flushes a finished temporary file, renames it over `path`, and flushes the directory entry. */
export async function commitFile(tmp: string, path: string, o: { sync?: boolean } = {}): Promise<void> {
  const { open, rename } = await fs();
  const { dirname } = await import('node:path');
  const sync = o.sync ?? true;
  if (sync) {
    const h = await open(tmp, 'r+');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  }
  await rename(tmp, path);
  if (sync) {
    // Not every platform lets a directory be opened for fsync; the rename is done either way.
    const d = await open(dirname(path), 'r').catch(() => undefined);
    await d?.sync().catch(() => undefined);
    await d?.close();
  }
}

let counter = 0;

/**
 * Writes bytes to a temporary file in the target's directory (created first with `mkdir`), then renames it over the target:
 * readers see the old file or the whole new one, never half of it. With `sync` (default true) the data is on disk
 * before the rename; dataset generators writing thousands of files pass false. On failure the temporary file is
 * removed and the target is left as it was.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array, o: { sync?: boolean; mkdir?: boolean } = {}): Promise<void> {
  const { mkdir, open, unlink } = await fs();
  const { basename, dirname, join } = await import('node:path');
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${(counter++).toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
  try {
    if (o.mkdir) await mkdir(dirname(path), { recursive: true });
    const h = await open(tmp, 'wx');
    try {
      await h.writeFile(bytes);
    } finally {
      await h.close();
    }
    await commitFile(tmp, path, o);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new OutputFileError(path, `${(e as Error)?.message ?? String(e)}; check that the directory exists and is writable, and that the disk is not full`);
  }
}

/**
 * Refuses to replace an existing file unless `force`. `flag` names the option that gave the path, for the message.
 */
export async function checkOutputFile(path: string, o: { force?: boolean; flag?: string } = {}): Promise<void> {
  if (o.force) return;
  const s = await (await fs()).lstat(path).catch(() => null);
  if (!s) return;
  const what = s.isDirectory() ? 'a directory' : 'a file';
  throw new OutputExistsError(path, `${o.flag ? `${o.flag} ` : ''}${path} is ${what} that already exists; effnet does not replace it unless told to: pass --force, or choose another path`);
}

/** The marker a command leaves in a directory it created, so that it may write there again. */
export const OUTPUT_MARKER = '.effnet-output';

/**
 * A directory a command writes several files into. Absent or empty: created (and, with `reuseOwn`, marked as
 * `owner`'s). Marked by the same owner with `reuseOwn`: reused (a demo's own output). Anything else:
 * OutputExistsError, unless `force`. Files named in `ignore` do not count (a plot an earlier step left for this run).
 * Returns whether the directory held files before.
 */
export async function claimOutputDir(dir: string, o: { owner: string; force?: boolean; reuseOwn?: boolean; flag?: string; hint?: string; ignore?: readonly string[] }): Promise<boolean> {
  const { mkdir, readdir, readFile, stat, writeFile } = await fs();
  const { join } = await import('node:path');
  const s = await stat(dir).catch(() => null);
  if (s && !s.isDirectory()) throw new OutputExistsError(dir, `${o.flag ? `${o.flag} ` : ''}${dir} is a file, not a directory; choose another path`);
  const entries = s ? (await readdir(dir)).filter((e) => e !== OUTPUT_MARKER && !o.ignore?.includes(e)) : [];
  if (entries.length && !o.force) {
    const owner = await readFile(join(dir, OUTPUT_MARKER), 'utf8').then((t) => t.trim(), () => null);
    if (!(o.reuseOwn && owner === o.owner)) {
      const shown = entries.slice(0, 4).join(', ') + (entries.length > 4 ? `, ... (${entries.length} entries)` : '');
      throw new OutputExistsError(dir, `${o.flag ? `${o.flag} ` : ''}${dir} already holds ${shown}${owner ? ` (written by ${owner})` : ''}; effnet does not write over it unless told to: ${o.hint ?? 'pass --force, or choose another directory'}`);
    }
  }
  try {
    await mkdir(dir, { recursive: true });
    // Only a command that writes into its own directory again (a demo) leaves a mark to recognise it by.
    if (o.reuseOwn) await writeFile(join(dir, OUTPUT_MARKER), `${o.owner}\n`);
  } catch (e) {
    throw new OutputFileError(dir, `${(e as Error)?.message ?? String(e)}; check that the parent directory is writable`);
  }
  return entries.length > 0;
}
