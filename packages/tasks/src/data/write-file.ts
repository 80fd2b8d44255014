import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { OutputFileError } from './errors.js';

let counter = 0;

/**
 * Writes `bytes` to a temporary file next to `file`, then renames it into place, so a reader never sees
 * half a file. Creates the parent directory. With `sync`, flushes to disk before the rename (slower; for
 * files a user keeps, not for thousands of dataset images).
 */
export async function writeFileViaTemp(file: string, bytes: Uint8Array, options: { sync?: boolean } = {}): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${(counter++).toString(36)}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    if (options.sync) {
      const { open } = await import('node:fs/promises');
      const handle = await open(tmp, 'w');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
    } else {
      await writeFile(tmp, bytes);
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new OutputFileError(file, `${(e as Error)?.message ?? String(e)}; check that the directory is writable and the disk is not full`);
  }
}
