/**
 * effnet's cache directory, shared by the zoo (pulled weights) and the backends (compiled models): `cacheDir` if
 * given, else EFFNET_CACHE, else $XDG_CACHE_HOME/effnet, else ~/.cache/effnet.
 */
export function resolveCacheDir(cacheDir?: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  const path = process.getBuiltinModule('node:path') as typeof import('node:path');
  if (cacheDir) return path.resolve(cacheDir);
  if (env.EFFNET_CACHE) return path.resolve(env.EFFNET_CACHE);
  if (env.XDG_CACHE_HOME) return path.resolve(env.XDG_CACHE_HOME, 'effnet');
  const os = process.getBuiltinModule('node:os') as typeof import('node:os');
  return path.join(os.homedir(), '.cache', 'effnet');
}
