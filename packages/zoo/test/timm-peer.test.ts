/**
 * The built-in registry's timm entries against timm itself (the peer in ../shared/peers, the commit the registry's
 * `reference` names): every tag's pretrained cfg, and the parameter count of EfficientNet-B8, which timm has and
 * effnet's variant table gained from timm's `_gen_efficientnet` table.
 */
import { analyzeGraph, buildEfficientNet, specFor } from '@effnet/core';
import { beforeAll, expect, it } from 'vitest';
import { describeWithPeers, runPython } from '../../../testing/peers.js';
import { BUILTIN_ENTRIES, type RegistryEntry } from '../src/index.js';

interface TimmCfg {
  input_size: [number, number, number];
  test_input_size: [number, number, number] | null;
  crop_pct: number;
  test_crop_pct: number | null;
  crop_mode: string;
  interpolation: string;
  mean: number[];
  std: number[];
  num_classes: number;
  license: string;
  hf_hub_id: string;
}

const B8 = ['tf_efficientnet_b8', 'efficientnet_b8'];
const timmEntries: RegistryEntry[] = BUILTIN_ENTRIES.filter((e) => e.family === 'timm' || e.family === 'tf');

describeWithPeers(['torch', 'timm'], "the registry's timm entries against timm", () => {
  let peer: { timm: string; cfgs: Record<string, TimmCfg | null>; params: Record<string, number> };
  beforeAll(() => {
    peer = JSON.parse(runPython('scripts/timm_cfgs.py', ['--tags', timmEntries.map((e) => e.name).join(','), '--params', B8.join(',')]));
  }, 300_000);

  it('every tag is a timm pretrained cfg with the preprocessing, classes, license and hub repo the entry gives', () => {
    for (const e of timmEntries) {
      const c = peer.cfgs[e.name];
      expect(c, `${e.name} in timm ${peer.timm}`).toBeTruthy();
      const p = e.preprocessing;
      expect(
        {
          inputSize: p.inputSize,
          testInputSize: p.testInputSize ?? null,
          cropPct: p.cropPct,
          testCropPct: p.testCropPct ?? null,
          cropMode: p.cropMode ?? 'center',
          interpolation: p.interpolation,
          numClasses: e.numClasses,
          license: e.license,
          hub: e.url,
        },
        e.name,
      ).toEqual({
        inputSize: c!.input_size[1],
        testInputSize: c!.test_input_size?.[1] ?? null,
        cropPct: c!.crop_pct,
        testCropPct: c!.test_crop_pct,
        cropMode: c!.crop_mode,
        interpolation: c!.interpolation,
        numClasses: c!.num_classes,
        license: c!.license,
        hub: `https://huggingface.co/${c!.hf_hub_id}/resolve/main/model.safetensors`,
      });
      for (let i = 0; i < 3; i++) {
        expect(p.mean[i], `${e.name} mean`).toBeCloseTo(c!.mean[i]!, 12);
        expect(p.std[i], `${e.name} std`).toBeCloseTo(c!.std[i]!, 12);
      }
    }
  });

  it.each(B8)("%s has timm's parameter count (what `effnet info` reports)", (arch) => {
    expect(analyzeGraph(buildEfficientNet(specFor(arch))).params).toBe(peer.params[arch]);
  });
});
