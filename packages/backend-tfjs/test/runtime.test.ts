import { describe, expect, it } from 'vitest';
import { selectRuntime, TfjsRuntimeError } from '../src/index.js';

describe('runtime selection', () => {
  it("'auto' walks tfjs-node-gpu, tfjs-node, wasm and reports why it skipped each", async () => {
    const rt = await selectRuntime('auto');
    // Neither native package can install on this machine; where one is installed, it is picked instead.
    if (rt.provider === '@tensorflow/tfjs-backend-wasm') {
      expect(rt.notes[0]).toMatch(/^skipped @tensorflow\/tfjs-node-gpu: @tensorflow\/tfjs-node-gpu is (not installed|installed but failed to load)/);
      expect(rt.notes[1]).toMatch(/^skipped @tensorflow\/tfjs-node: /);
      expect(rt.notes[2]).toBe('picked wasm (@tensorflow/tfjs-backend-wasm)');
    } else expect(rt.backend).toBe('tensorflow');
  });
  it("an explicit 'gpu' that cannot be had is an error with the install hint", async () => {
    try {
      const rt = await selectRuntime('gpu');
      expect(rt.backend).toBe('tensorflow');
    } catch (e) {
      expect(e).toBeInstanceOf(TfjsRuntimeError);
      expect((e as Error).message).toMatch(/npm install @tensorflow\/tfjs-node-gpu; it needs Linux x64 with CUDA/);
    }
  });
  it("'js' is the pure JavaScript backend and unknown devices are named", async () => {
    expect((await selectRuntime('js')).backend).toBe('cpu');
    await expect(selectRuntime('tpu' as never)).rejects.toThrow(/device "tpu" is not one of auto, gpu, cpu, wasm, js/);
    await selectRuntime('wasm');
  });
});
