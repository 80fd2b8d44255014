import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxBackend } from '@effnet/backend-onnx';
import { readNpy } from '@effnet/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, maxDiff, torchvisionFixture } from '../../../testing/peers.js';
import { loadPretrained } from '../src/index.js';
import { cleanEnv, removeTempDirs, sendBody, sha256, tempDir, TestServer } from './helpers.js';

/**
 * A state_dict saved by torchvision itself (random weights, perturbed BN statistics), served over loopback and pulled
 * through a registry entry with family "torchvision": the zoo's model gives torchvision's logits.
 */
describeWithPeers(['torch', 'torchvision'], 'pulled torchvision weights against torchvision', () => {
  const server = new TestServer();
  let registry = '';
  let fx: ReturnType<typeof torchvisionFixture>;

  beforeAll(async () => {
    // The same fixture the CLI's parity tests use (generated once into the OS temp dir).
    fx = torchvisionFixture('efficientnet_b0', { resolution: 128 });
    const bytes = readFileSync(fx.weights);
    const base = await server.start();
    server.route('/tv/model.safetensors', (req, res, n) => sendBody(req, res, bytes, n));
    registry = join(tempDir(), 'registry.json');
    writeFileSync(
      registry,
      JSON.stringify({
        entries: [{ name: 'tv_b0.fixture', arch: 'efficientnet_b0', family: 'torchvision', format: 'safetensors', url: `${base}/tv/model.safetensors`, sha256: sha256(bytes), preprocessing: { inputSize: 128 } }],
      }),
    );
  });
  afterAll(() => server.stop());

  it('efficientnet_b0 with torchvision names gives torchvision logits', async () => {
    const m = await loadPretrained('tv_b0.fixture', { registry, env: cleanEnv(), cacheDir: tempDir(), backend: new OnnxBackend(), threads: 2 });
    expect(m.numClasses).toBe(1000);
    const got = await m.run(await readNpy(fx.input));
    await m.dispose();
    const want = await readNpy(fx.logits);
    expect(got.shape).toEqual(want.shape);
    const { diff, scale } = maxDiff(got.data as Float32Array, want.data as Float32Array);
    expect(fx.meta.input_sensitivity as number).toBeGreaterThan(1e-2);
    expect(diff).toBeLessThanOrEqual(1e-4 * scale);
  });
});

afterAll(removeTempDirs);
