/**
 * effdet's COCO detectors (rwightman/efficientdet-pytorch): PyTorch state_dicts (.pth, read by core's allow-listed
 * reader; nothing in them runs) under effdet's names, which are a detector's canonical names.
 *
 * - URLs and image sizes: `efficientdet_model_param_dict` in effdet/config/model_config.py (the peer commit in
 *   ../shared/peers/COMMITS); the preprocessing is effdet's `resolve_input_config`: bicubic letterbox onto the mean
 *   colour, ImageNet mean/std, (0.5, 0.5, 0.5) for the Lite models (`tf_efficientdet_lite_common`).
 * - mAP: the "Models" table of effdet's README.md (COCO val2017, effdet's own evaluation with hard NMS), at commit
 *   0262616e3ce0d725051b3edcaf2dadd552aafda0; the integer in each tf_ D-series file name agrees with it. That README's
 *   one Lite figure (32.0 for tf_efficientdet_lite0) is for a checkpoint trained with effdet's code (its 2020-06-14
 *   note), not evidently the file model_config.py points at now, so the Lite entries have none.
 * - effdet publishes no checksum: the eight hex digits in a file name are not checked by effdet's own loader, so
 *   pulls record the sha256 they compute.
 * Class ids are COCO category ids (1-90; effdet's output `classes + 1`): label set coco-90.
 */
import { defaultDetectorPreprocessing, type RegistryEntry } from './schema.js';

const RELEASE = 'https://github.com/rwightman/efficientdet-pytorch/releases/download/v0.1';
const REF =
  'effdet (rwightman/efficientdet-pytorch) effdet/config/model_config.py: url and image_size; mAP: its README.md Models table (val2017), commit 0262616e';

/** [detector, file name in the v0.1 release, COCO val2017 mAP when published] */
const ROWS: [arch: string, file: string, cocoMap?: number][] = [
  ['tf_efficientdet_d0', 'tf_efficientdet_d0_34-f153e0cf.pth', 34.2],
  ['tf_efficientdet_d1', 'tf_efficientdet_d1_40-a30f94af.pth', 40.1],
  ['tf_efficientdet_d2', 'tf_efficientdet_d2_43-8107aa99.pth', 43.4],
  ['tf_efficientdet_d3', 'tf_efficientdet_d3_47-0b525f35.pth', 47.1],
  ['tf_efficientdet_d4', 'tf_efficientdet_d4_49-f56376d9.pth', 49.2],
  ['tf_efficientdet_d5', 'tf_efficientdet_d5_51-c79f9be6.pth', 51.2],
  ['tf_efficientdet_d6', 'tf_efficientdet_d6_52-4eda3773.pth', 52.0],
  ['tf_efficientdet_d7', 'tf_efficientdet_d7_53-6d1d7a95.pth', 53.1],
  ['tf_efficientdet_d7x', 'tf_efficientdet_d7x-f390b87c.pth', 54.3],
  ['tf_efficientdet_lite0', 'tf_efficientdet_lite0-dfacfc78.pth'],
  ['tf_efficientdet_lite1', 'tf_efficientdet_lite1-6dc7ab30.pth'],
  ['tf_efficientdet_lite2', 'tf_efficientdet_lite2-86c5d55b.pth'],
  ['tf_efficientdet_lite3', 'tf_efficientdet_lite3-506852cb.pth'],
  ['tf_efficientdet_lite3x', 'tf_efficientdet_lite3x-8404c57b.pth'],
  ['tf_efficientdet_lite4', 'tf_efficientdet_lite4-391ddabc.pth'],
  ['efficientdet_d0', 'efficientdet_d0-f3276ba8.pth', 33.6],
  ['efficientdet_d1', 'efficientdet_d1-bb7e98fe.pth', 39.4],
];

function origin(arch: string): string {
  if (arch.startsWith('tf_efficientdet_lite')) return "automl's EfficientDet-Lite weights ported by effdet (TF SAME padding, ReLU6, inputs scaled to [-1, 1])";
  if (arch.startsWith('tf_')) return "automl's (TensorFlow) weights ported by effdet (TF SAME padding)";
  return 'trained by effdet in PyTorch (symmetric padding)';
}

/** effdet's COCO checkpoints as `<detector>.coco` entries. */
export const EFFDET_ENTRIES: readonly RegistryEntry[] = ROWS.map(([arch, file, cocoMap]) => ({
  name: `${arch}.coco`,
  arch,
  task: 'detection',
  family: 'effdet',
  format: 'pth',
  naming: 'effdet',
  url: `${RELEASE}/${file}`,
  preprocessing: defaultDetectorPreprocessing(arch),
  labels: 'coco-90',
  numClasses: 90,
  license: 'apache-2.0',
  ...(cocoMap === undefined ? {} : { cocoMap }),
  reference: REF,
  notes: `COCO detector: ${origin(arch)}. Class ids are COCO category ids (labels coco-90).`,
  origin: 'builtin',
}));
