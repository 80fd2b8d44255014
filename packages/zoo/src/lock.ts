import { randomBytes } from 'node:crypto';
import { open, readFile, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { LockTimeoutError } from './errors.js';
import { sleep } from './sleep.js';

export interface LockOptions {
  /** A lock whose holder stopped refreshing it this long ago is stale (default 5 minutes). */
  staleMs?: number;
  /** How often the holder refreshes the lock's mtime (default staleMs / 5, at most 30 s). */
  heartbeatMs?: number;
  /** Give up waiting after this long (default 1 hour). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called once when the lock is held by someone else and we start waiting. */
  onWait?: (holder: LockInfo | undefined) => void;
}

/** What a lock file holds. */
export interface LockInfo {
  pid: number;
  host: string;
  token: string;
  since: string;
}

export interface Lock {
  readonly path: string;
  /** Whether we waited for another holder before getting it. */
  readonly waited: boolean;
  release(): Promise<void>;
}


async function readLock(path: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(path, 'utf8')) as LockInfo;
    return typeof info.pid === 'number' && typeof info.token === 'string' ? info : undefined;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why a lock is stale, or undefined while its holder looks alive. */
async function staleReason(path: string, info: LockInfo | undefined, staleMs: number): Promise<string | undefined> {
  let mtime: number;
  try {
    mtime = (await stat(path)).mtimeMs;
  } catch {
    return undefined; // gone: not stale, just free
  }
  const age = Date.now() - mtime;
  if (info && info.host === hostname() && !pidAlive(info.pid)) return `its process ${info.pid} has exited`;
  if (age > staleMs) return `it was last refreshed ${Math.round(age / 1000)} s ago`;
  // A lock file that stays unreadable (its writer died between create and write) goes stale by age alone.
  return undefined;
}

/**
 * Takes an exclusive lock file (O_CREAT|O_EXCL), waiting with backoff while another live process holds it. A lock
 * whose process has exited (same host) or that has not been refreshed for `staleMs` is taken over. While held, the
 * lock's mtime is refreshed so that a long download is not mistaken for a dead one.
 */
export async function acquireLock(path: string, o: LockOptions = {}): Promise<Lock> {
  const staleMs = o.staleMs ?? 5 * 60_000;
  const heartbeatMs = o.heartbeatMs ?? Math.min(30_000, Math.max(50, staleMs / 5));
  const deadline = Date.now() + (o.timeoutMs ?? 60 * 60_000);
  const me: LockInfo = { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex'), since: new Date().toISOString() };
  let delay = 20;
  let waited = false;
  for (;;) {
    o.signal?.throwIfAborted();
    try {
      const h = await open(path, 'wx');
      try {
        await h.writeFile(JSON.stringify(me));
      } finally {
        await h.close();
      }
      const timer = setInterval(() => {
        const now = new Date();
        utimes(path, now, now).catch(() => undefined);
      }, heartbeatMs);
      timer.unref();
      let released = false;
      return {
        path,
        waited,
        async release() {
          if (released) return;
          released = true;
          clearInterval(timer);
          // Remove it only if it is still ours (a stale-lock takeover may have replaced it).
          const info = await readLock(path);
          if (!info || info.token === me.token) await unlink(path).catch(() => undefined);
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await readLock(path);
    const reason = await staleReason(path, holder, staleMs);
    if (reason) {
      // Remove it only if it is still the lock we judged stale.
      const again = await readLock(path);
      if ((again?.token ?? '') === (holder?.token ?? '')) await unlink(path).catch(() => undefined);
      continue;
    }
    if (!waited) {
      waited = true;
      o.onWait?.(holder);
    }
    if (Date.now() > deadline)
      throw new LockTimeoutError(
        `timed out waiting for ${path}, held by ${holder ? `process ${holder.pid} on ${holder.host} since ${holder.since}` : 'another process'}; ` +
          'if no effnet pull is running, delete the lock file',
      );
    await sleep(delay, o.signal);
    delay = Math.min(500, Math.round(delay * 1.5));
  }
}
