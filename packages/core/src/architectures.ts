import type { Activation } from './blocks.js';

/**
 * A base architecture before scaling: the B0 (or V2-S, V2-B0, ...) table and the rules a family follows when it is
 * scaled. Block strings are timm's arch_def rows (one stage per string).
 */
export interface BaseArchitecture {
  name: string;
  stages: readonly string[];
  stemChannels: number;
  headChannels: number;
  act: Activation;
  /** Stem width is not scaled (Lite). */
  fixStem: boolean;
  /** Head width is not scaled (Lite). */
  fixHead: boolean;
  /** First and last stage repeats are not scaled (Lite). */
  fixFirstLastRepeats: boolean;
  /** make_divisible's round limit: 0.9 for V1/V2-S/M/L/XL, 0 for timm's V2-B* ("never below" off). */
  roundLimit: number;
}

/** EfficientNet-B0 (Tan & Le 2019, table 1), as timm's `_gen_efficientnet`. */
const V1: BaseArchitecture = {
  name: 'efficientnet',
  stages: [
    'ds_r1_k3_s1_e1_c16_se0.25',
    'ir_r2_k3_s2_e6_c24_se0.25',
    'ir_r2_k5_s2_e6_c40_se0.25',
    'ir_r3_k3_s2_e6_c80_se0.25',
    'ir_r3_k5_s1_e6_c112_se0.25',
    'ir_r4_k5_s2_e6_c192_se0.25',
    'ir_r1_k3_s1_e6_c320_se0.25',
  ],
  stemChannels: 32,
  headChannels: 1280,
  act: 'silu',
  fixStem: false,
  fixHead: false,
  fixFirstLastRepeats: false,
  roundLimit: 0.9,
};

/** EfficientNet-Lite: B0 without SE, ReLU6, fixed stem and head, first/last stage not repeated more. */
const LITE: BaseArchitecture = {
  ...V1,
  name: 'efficientnet_lite',
  stages: V1.stages.map((s) => s.replace('_se0.25', '')),
  act: 'relu6',
  fixStem: true,
  fixHead: true,
  fixFirstLastRepeats: true,
};

const v2 = (name: string, stages: string[], stemChannels: number, roundLimit = 0.9): BaseArchitecture => ({
  name,
  stages,
  stemChannels,
  headChannels: 1280,
  act: 'silu',
  fixStem: false,
  fixHead: false,
  fixFirstLastRepeats: false,
  roundLimit,
});

/** EfficientNetV2 (Tan & Le 2021) as released in google/automl and ported by timm and torchvision. */
const V2_S = v2('efficientnetv2_s', ['cn_r2_k3_s1_e1_c24', 'er_r4_k3_s2_e4_c48', 'er_r4_k3_s2_e4_c64', 'ir_r6_k3_s2_e4_c128_se0.25', 'ir_r9_k3_s1_e6_c160_se0.25', 'ir_r15_k3_s2_e6_c256_se0.25'], 24);
const V2_M = v2('efficientnetv2_m', ['cn_r3_k3_s1_e1_c24', 'er_r5_k3_s2_e4_c48', 'er_r5_k3_s2_e4_c80', 'ir_r7_k3_s2_e4_c160_se0.25', 'ir_r14_k3_s1_e6_c176_se0.25', 'ir_r18_k3_s2_e6_c304_se0.25', 'ir_r5_k3_s1_e6_c512_se0.25'], 24);
const V2_L = v2('efficientnetv2_l', ['cn_r4_k3_s1_e1_c32', 'er_r7_k3_s2_e4_c64', 'er_r7_k3_s2_e4_c96', 'ir_r10_k3_s2_e4_c192_se0.25', 'ir_r19_k3_s1_e6_c224_se0.25', 'ir_r25_k3_s2_e6_c384_se0.25', 'ir_r7_k3_s1_e6_c640_se0.25'], 32);
const V2_XL = v2('efficientnetv2_xl', ['cn_r4_k3_s1_e1_c32', 'er_r8_k3_s2_e4_c64', 'er_r8_k3_s2_e4_c96', 'ir_r16_k3_s2_e4_c192_se0.25', 'ir_r24_k3_s1_e6_c256_se0.25', 'ir_r32_k3_s2_e6_c512_se0.25', 'ir_r8_k3_s1_e6_c640_se0.25'], 32);
/** The V2-B0 table that V2-B1..B3 scale from (timm's `_gen_efficientnetv2_base`, round limit 0). */
const V2_BASE = v2('efficientnetv2_base', ['cn_r1_k3_s1_e1_c16', 'er_r2_k3_s2_e4_c32', 'er_r2_k3_s2_e4_c48', 'ir_r3_k3_s2_e4_c96_se0.25', 'ir_r5_k3_s1_e6_c112_se0.25', 'ir_r8_k3_s2_e6_c192_se0.25'], 32, 0);

export const BASE_ARCHITECTURES: Readonly<Record<string, BaseArchitecture>> = Object.fromEntries(
  [V1, LITE, V2_S, V2_M, V2_L, V2_XL, V2_BASE].map((a) => [a.name, a]),
);
