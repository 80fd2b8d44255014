/** File helpers for tests. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every file under `dir` with its bytes (base64), to tell whether a command changed anything. */
export function snapshot(dir: string, o: { dirs?: boolean } = {}): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = join(e.parentPath ?? (e as { path?: string }).path ?? dir, e.name);
    if (o.dirs && e.isDirectory()) out.set(`${p}/`, 'a directory');
    if (!e.isFile()) continue;
    out.set(p, readFileSync(p).toString('base64'));
  }
  return out;
}
