import { EffnetError } from '@effnet/core';

/** A name that no registry (built-in or yours) has. Lists the closest known names. */
export class UnknownModelError extends EffnetError {
  override name = 'UnknownModelError';
  constructor(
    readonly model: string,
    readonly suggestions: readonly string[],
    readonly registries: readonly string[],
  ) {
    const near = suggestions.length ? ` (did you mean ${suggestions.map((s) => `"${s}"`).join(', ')}?)` : '';
    super(
      `"${model}" is not in the model registry${near}; run "effnet zoo list" for every name, or add your own entry with ` +
        `--registry <file> or EFFNET_REGISTRY (searched: ${registries.join(', ')})`,
    );
  }
}

/** One problem in a registry file: which entry, which field, what was there and what would work. */
export interface RegistryProblem {
  /** e.g. `entries[3].family` or `entries[3] ("my_b0")`. */
  where: string;
  message: string;
}

/** A registry file that does not validate. Every problem is listed, each naming the entry and the field. */
export class RegistryError extends EffnetError {
  override name = 'RegistryError';
  constructor(
    readonly file: string,
    readonly problems: readonly RegistryProblem[],
  ) {
    const shape = 'the file is {"entries": [...]}; the smallest entry is {"name", "arch", "family", "format", "url", "sha256"}';
    super(
      problems.length === 1
        ? `registry ${file} is invalid: ${problems[0]!.where}: ${problems[0]!.message} (${shape})`
        : `registry ${file} is invalid (${problems.length} problems):\n  ` + problems.map((p) => `${p.where}: ${p.message}`).join('\n  ') + `\n${shape[0]!.toUpperCase()}${shape.slice(1)}.`,
    );
  }
}

/** A download that failed for good: the URL, the HTTP status (if any), how many attempts were made, and why. */
export class DownloadError extends EffnetError {
  override name = 'DownloadError';
  constructor(
    readonly url: string,
    readonly reason: string,
    readonly attempts: number,
    readonly status?: number,
  ) {
    super(`cannot download ${url}: ${reason}${attempts > 1 ? ` (gave up after ${attempts} attempts)` : ''}`);
  }
}

/** A file whose size or checksum is not what its publisher (or server) said. Nothing is left in the cache. */
export class ChecksumError extends EffnetError {
  override name = 'ChecksumError';
  constructor(
    readonly model: string,
    readonly url: string,
    readonly kind: 'sha256' | 'sha256-prefix' | 'md5' | 'size',
    readonly expected: string,
    readonly actual: string,
    readonly expectedFrom: string,
  ) {
    super(
      `"${model}": the ${kind} of ${url} is ${actual}, but ${expectedFrom} says ${expected}; the download was deleted. ` +
        `If the publisher really replaced the file, put the new sha256 in the registry entry (check it against the ` +
        `publisher first); otherwise the source or a proxy is serving a different file.`,
    );
  }
}

/** Offline mode (EFFNET_OFFLINE=1, HF_HUB_OFFLINE=1 or offline: true) and the file is not in the cache. */
export class OfflineError extends EffnetError {
  override name = 'OfflineError';
  constructor(
    readonly model: string,
    readonly path: string,
    readonly flag: string,
  ) {
    super(
      `"${model}" is not in the cache (${path}) and ${flag} forbids downloading; run "effnet pull ${model}" where the ` +
        `network is reachable (with the same EFFNET_CACHE), or ${flag.includes('=') ? `unset ${flag.slice(0, flag.indexOf('='))}` : 'turn offline mode off'}`,
    );
  }
}

/** Waiting for another process's download took longer than allowed. */
export class LockTimeoutError extends EffnetError {
  override name = 'LockTimeoutError';
}
