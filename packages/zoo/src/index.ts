/**
 * @effnet/zoo: pretrained EfficientNets. A registry of variants (data), pulls that verify and never corrupt the cache,
 * and converters from timm, torchvision and Keras names to effnet's canonical ones.
 */
export * from './errors.js';
export * from './registry/schema.js';
export { BUILTIN_ENTRIES } from './registry/builtin.js';
export * from './registry/registry.js';
export * from './cache.js';
export * from './cache-admin.js';
export { acquireLock, type Lock, type LockInfo, type LockOptions } from './lock.js';
export { download, sha256FromEtag, type DownloadOptions, type DownloadResult, type RetryOptions, type TransferProgress } from './download.js';
export * from './pull.js';
export * from './convert/index.js';
export * from './load.js';
