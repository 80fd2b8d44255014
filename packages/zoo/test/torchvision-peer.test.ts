import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OnnxBackend } from '@effnet/backend-onnx';
import { readNpy } from '@effnet/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers, maxDiff, pthFixture, torchvisionFixture } from '../../../testing/peers.js';
import { loadPretrained, Registry } from '../src/index.js';
import { cleanEnv, removeTempDirs, sendBody, sha256, tempDir, TestServer } from './helpers.js';

/**
 * A state_dict saved by torchvision itself (random weights, perturbed BN statistics), served over loopback and pulled
 * through a registry entry with family "torchvision": the zoo's model gives torchvision's logits. The same state_dict
 * saved with torch.save (.pth) goes through the built-in efficientnet_b0.tv_in1k entry, only its URL and checksum
 * pointed at the local file.
 */
describeWithPeers(['torch', 'torchvision'], 'pulled torchvision weights against torchvision', () => {
  const server = new TestServer();
  let registry = '';
  let fx: ReturnType<typeof torchvisionFixture>;
  let pth: Uint8Array;

  beforeAll(async () => {
    // The same fixture the CLI's parity tests use (generated once into the OS temp dir).
    fx = torchvisionFixture('efficientnet_b0', { resolution: 128 });
    const bytes = readFileSync(fx.weights);
    const base = await server.start();
    server.route('/tv/model.safetensors', (req, res, n) => sendBody(req, res, bytes, n));
    pth = readFileSync(join(pthFixture(fx), 'weights.zip.pth'));
    server.route('/tv/efficientnet_b0_rwightman-fixture.pth', (req, res, n) => sendBody(req, res, pth, n));
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

  it("the built-in efficientnet_b0.tv_in1k entry reads torch.save's .pth without Python and gives torchvision's logits", async () => {
    const builtin = (await Registry.load({ env: cleanEnv() })).get('efficientnet_b0.tv_in1k');
    const entry = { ...builtin, url: `${server.base}/tv/efficientnet_b0_rwightman-fixture.pth`, sha256Prefix: sha256(pth).slice(0, 8) };
    const m = await loadPretrained(entry.name, { registry: new Registry([entry]), env: cleanEnv(), cacheDir: tempDir(), backend: new OnnxBackend(), threads: 2, resolution: 128 });
    expect(m.notes).toContain('read PyTorch checkpoint (zip), 360 tensors');
    const got = await m.run(await readNpy(fx.input));
    await m.dispose();
    const want = await readNpy(fx.logits);
    const { diff, scale } = maxDiff(got.data as Float32Array, want.data as Float32Array);
    expect(diff).toBeLessThanOrEqual(1e-4 * scale);
  });
});

afterAll(removeTempDirs);
