/**
 * The timm round trip (training at scale goes through PyTorch): an effnet checkpoint loads into timm with timm's own
 * loader and gives effnet's logits; it trains there under DistributedDataParallel; the state_dict timm saves
 * (safetensors and torch.save .pth) loads back into effnet with timm's logits. Peers: Debian's PyTorch and timm's source.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildEfficientNet, getBackend, readNpy, specFor, type Tensor, writeNpy } from '@effnet/core';
import { defaultPreprocessing } from '@effnet/zoo';
import { expect, it } from 'vitest';
import { nontrivialWeights, randomInput } from '../../../../testing/graphs.js';
import { describeWithPeers, maxDiff, runPython } from '../../../../testing/peers.js';
import { loadModelWeights } from '../models/resolve.js';
import { MODEL_CARD_FORMAT, saveCheckpoint } from './model-card.js';

const ARCH = 'efficientnet_b0';
const CLASSES = 10;
const RES = 64;

async function logitsOf(model: string, o: { weights?: string } = {}, x: Tensor): Promise<Float32Array> {
  const m = await loadModelWeights(model, { ...o, inputResolution: RES });
  const runner = await (await getBackend('onnx')).load(m.graph, m.weights, { threads: 1 });
  try {
    return Object.values(await runner.run(x))[0]!.data as Float32Array;
  } finally {
    await runner.dispose();
  }
}

function expectClose(actual: Float32Array, expected: Float32Array, what: string): void {
  const { diff, scale } = maxDiff(actual, expected);
  expect(diff / scale, `${what}: max |diff| ${diff} at logit scale ${scale}`).toBeLessThan(1e-4);
}

describeWithPeers(['torch', 'timm'], 'timm round trip', () => {
  it('effnet checkpoint -> timm (same logits) -> DDP training in timm -> safetensors and .pth back into effnet (same logits)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'effnet-timm-'));
    const spec = specFor(ARCH);
    const graph = buildEfficientNet(spec, { numClasses: CLASSES, inputResolution: RES });
    mkdirSync(join(dir, 'effnet'));
    await saveCheckpoint(join(dir, 'effnet'), 'model', nontrivialWeights(graph, 11), {
      format: MODEL_CARD_FORMAT,
      name: 'timm-roundtrip',
      arch: ARCH,
      spec,
      classes: Array.from({ length: CLASSES }, (_, i) => `class ${i}`),
      preprocessing: { ...defaultPreprocessing(ARCH), inputSize: RES },
      weights: 'model.safetensors',
      base: 'random',
      seed: 11,
      epoch: 0,
      step: 0,
      created: new Date(0).toISOString(),
    });
    const x = randomInput([2, 3, RES, RES], 5);
    await writeNpy(join(dir, 'x.npy'), x);
    const effnet = await logitsOf(join(dir, 'effnet'), {}, x);

    const out = join(dir, 'timm');
    runPython('scripts/timm_roundtrip.py', ['--weights', join(dir, 'effnet', 'model.safetensors'), '--arch', ARCH, '--num-classes', String(CLASSES), '--input', join(dir, 'x.npy'), '--out', out, '--train-steps', '2']);
    const loaded = (await readNpy(join(out, 'logits_loaded.npy'))).data as Float32Array;
    const trained = (await readNpy(join(out, 'logits_trained.npy'))).data as Float32Array;
    expectClose(loaded, effnet, 'timm with the effnet checkpoint vs effnet');
    // Training changed the model (else the way back would prove nothing).
    expect(maxDiff(trained, loaded).diff).toBeGreaterThan(1e-3);

    for (const file of ['trained.safetensors', 'trained.pth']) expectClose(await logitsOf(ARCH, { weights: join(out, file) }, x), trained, `effnet with timm's ${file} vs timm`);
  });
});
