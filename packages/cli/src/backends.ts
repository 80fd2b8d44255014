import { EffnetError } from '@effnet/core';

/** Backend packages register themselves with core when imported; load the ones asked for. */
const PACKAGES: Record<string, string> = { onnx: '@effnet/backend-onnx', tfjs: '@effnet/backend-tfjs' };

export async function loadBackends(names: string[]): Promise<void> {
  for (const name of names) {
    const pkg = PACKAGES[name];
    if (!pkg) throw new EffnetError(`--backend "${name}" is not one of ${Object.keys(PACKAGES).join(', ')}`);
    try {
      await import(pkg);
    } catch (e) {
      throw new EffnetError(`--backend ${name} needs ${pkg}, which failed to load: ${(e as Error).message}. Install it with npm install ${pkg}`);
    }
  }
}
