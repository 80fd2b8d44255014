import { defineConfig, type Options } from 'tsup';

/** Every package builds the same way: ESM + CJS + .d.ts, our sources only (dependencies, @tensorflow/* included, stay external). */
export function packageConfig(entry: Options['entry'], extra: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
    skipNodeModulesBundle: true,
    ...extra,
  });
}
