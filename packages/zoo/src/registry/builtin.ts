/**
 * The built-in registry: pretrained EfficientNets as their publishers describe them. Every figure comes from the
 * publisher's own material, named with its revision in each entry's `reference`; a figure a publisher does not give is
 * left out, never guessed.
 *
 * - timm (Hugging Face Hub, `timm/<name>`): names, preprocessing and license from the pretrained cfgs in
 *   huggingface/pytorch-image-models `timm/models/efficientnet.py` at commit aa4b5850 (TIMM_CFG_COMMIT, the timm the
 *   peer tests run); top-1 and the size it was measured at from timm's `results/results-imagenet.csv` at commit
 *   7479d451 (TIMM_RESULTS_COMMIT): the row at the entry's evaluation size (test_input_size, else input_size).
 *   packages/zoo/test/fixtures/ holds the EfficientNet rows of that file and a test keeps these figures equal to it.
 *   timm publishes no sha256 in its cfgs: pulls check the Hub's X-Linked-Etag, which is the file's sha256.
 * - torchvision: URLs, transforms, acc@1 and `_weight_size` from pytorch/vision `torchvision/models/efficientnet.py`;
 *   the hex digits in each file name are the start of its sha256 (torch.hub's check_hash convention). The files are
 *   PyTorch checkpoints (.pth), read by core's allow-listed reader (nothing in them runs) under torchvision's names.
 * - Keras: URLs and md5 hashes (`WEIGHTS_HASHES[...][0]`, 32 hex digits, which Keras' get_file checks as md5) from
 *   keras-team/keras `keras/src/applications/efficientnet.py` at 9d34d0a8 and `efficientnet_v2.py` at 0c07bd65; top-1
 *   and size from the Keras Applications table (keras.io/api/applications, keras-team/keras-io
 *   `templates/api/applications/index.md` at e7be306b).
 */
import { EFFDET_ENTRIES } from './effdet.js';
import { embeddedEntries } from './embedded.js';
import type { Rgb } from '@effnet/core';
import { HALF, IMAGENET_MEAN, IMAGENET_STD, type Preprocessing, type RegistryEntry } from './schema.js';

/** huggingface/pytorch-image-models commits the timm figures come from. */
export const TIMM_CFG_COMMIT = 'aa4b5850c1543fa488abf260f18390eda46cf85d';
export const TIMM_RESULTS_COMMIT = '7479d451a6dfd8af27f941b8e82a7402461fae80';
const TIMM_REF = `timm pretrained_cfg: huggingface/pytorch-image-models timm/models/efficientnet.py @ ${TIMM_CFG_COMMIT}; top-1: results/results-imagenet.csv @ ${TIMM_RESULTS_COMMIT}`;
const TV_REF = 'torchvision.models.efficientnet (pytorch/vision torchvision/models/efficientnet.py), IMAGENET1K weights meta';
const KERAS_IO = 'keras.io/api/applications (keras-team/keras-io templates/api/applications/index.md @ e7be306b7cad4726760a753c5bed90824e096b81)';
const KERAS_REF = `keras.applications.efficientnet (keras-team/keras keras/src/applications/efficientnet.py @ 9d34d0a84471c234500981c55d741641aa6e01d7); top-1 and size: ${KERAS_IO}`;
const KERAS_V2_REF = `keras.applications.efficientnet_v2 (keras-team/keras keras/src/applications/efficientnet_v2.py @ 0c07bd6503f2f73d9b3a7a40906bd501edb6c783); top-1 and size: ${KERAS_IO}`;

const HF = 'https://huggingface.co';
const hubUrl = (repo: string) => `${HF}/timm/${repo}/resolve/main/model.safetensors`;

interface TimmCfg {
  /** input_size (default 224) */
  size?: number;
  test?: number;
  crop?: number;
  testCrop?: number;
  mode?: 'squash';
  interp?: 'bilinear';
  /** IMAGENET_INCEPTION_MEAN/STD or (0.5, 0.5, 0.5): both are 0.5. */
  half?: boolean;
}

/** A timm pretrained tag. `top1` is [top-1 %, image size]: timm's results table at the tag's evaluation size. */
function timm(name: string, cfg: TimmCfg, top1?: [number, number], extra: Partial<RegistryEntry> = {}): RegistryEntry {
  const arch = name.slice(0, name.indexOf('.'));
  const p: Preprocessing = {
    inputSize: cfg.size ?? 224,
    cropPct: cfg.crop ?? 0.875,
    interpolation: cfg.interp ?? 'bicubic',
    mean: cfg.half ? [...HALF] : [...IMAGENET_MEAN],
    std: cfg.half ? [...HALF] : [...IMAGENET_STD],
  };
  if (cfg.test) p.testInputSize = cfg.test;
  if (cfg.testCrop) p.testCropPct = cfg.testCrop;
  if (cfg.mode) p.cropMode = cfg.mode;
  return {
    name,
    arch,
    family: arch.startsWith('tf_') ? 'tf' : 'timm',
    format: 'safetensors',
    naming: 'timm',
    url: hubUrl(name),
    preprocessing: p,
    labels: 'imagenet-1k',
    numClasses: 1000,
    license: 'apache-2.0',
    ...(top1 ? { top1: top1[0], top1Resolution: top1[1] } : {}),
    reference: TIMM_REF,
    origin: 'builtin',
    ...extra,
  };
}

/** tf_efficientnet_b0..b8: input size and crop_pct as in timm's cfgs. */
const TF_B: [size: number, crop: number][] = [
  [224, 0.875],
  [240, 0.882],
  [260, 0.89],
  [300, 0.904],
  [380, 0.922],
  [456, 0.934],
  [528, 0.942],
  [600, 0.949],
  [672, 0.954],
];

/**
 * timm results-imagenet.csv top-1 per tag for tf_efficientnet_b0..b8 (undefined: timm has no such weights). The tags
 * are in display order; a bare `tf_efficientnet_bN` means the first that exists.
 */
const TF_B_TOP1: Record<'in1k' | 'aa_in1k' | 'ap_in1k' | 'ns_jft_in1k' | 'ra_in1k', (number | undefined)[]> = {
  in1k: [76.536, 78.558, 79.614, 80.88, 82.608, 83.166, undefined, undefined, undefined],
  aa_in1k: [76.882, 78.84, 80.082, 81.648, 83.04, 83.696, 84.118, 84.436, undefined],
  ap_in1k: [77.094, 79.288, 80.296, 81.854, 83.25, 84.254, 84.792, 85.132, 85.366],
  ns_jft_in1k: [78.684, 81.388, 82.412, 84.064, 85.176, 86.102, 86.476, 86.852, undefined],
  ra_in1k: [undefined, undefined, undefined, undefined, undefined, 83.828, undefined, 84.93, 85.356],
};

function tfEfficientNetB(): RegistryEntry[] {
  const out: RegistryEntry[] = [];
  for (const tag of ['in1k', 'aa_in1k', 'ap_in1k', 'ns_jft_in1k', 'ra_in1k'] as const) {
    TF_B.forEach(([size, crop], b) => {
      const top1 = TF_B_TOP1[tag][b];
      if (top1 === undefined) return;
      // AdvProp (ap) weights take timm's IMAGENET_INCEPTION_MEAN/STD; the rest ImageNet mean/std.
      out.push(timm(`tf_efficientnet_b${b}.${tag}`, { size, crop, half: tag === 'ap_in1k' }, [top1, size]));
    });
  }
  return out;
}

const TIMM_ENTRIES: RegistryEntry[] = [
  // timm's own trainings (PyTorch conventions: symmetric padding, BN eps 1e-5).
  timm('efficientnet_b0.ra_in1k', {}, [77.696, 224]),
  timm('efficientnet_b0.ra4_e3600_r224_in1k', { crop: 0.9, half: true, test: 256, testCrop: 1.0 }, [79.37, 256]),
  timm('efficientnet_b1.ft_in1k', { test: 256, testCrop: 1.0 }, [78.798, 256]),
  timm('efficientnet_b1.ra4_e3600_r240_in1k', { size: 240, crop: 0.9, half: true, test: 288, testCrop: 1.0 }, [81.434, 288]),
  timm('efficientnet_b2.ra_in1k', { size: 256, test: 288, testCrop: 1.0 }, [80.61, 288]),
  timm('efficientnet_b3.ra2_in1k', { size: 288, test: 320, testCrop: 1.0 }, [82.298, 320]),
  timm('efficientnet_b4.ra2_in1k', { size: 320, test: 384, testCrop: 1.0 }, [83.474, 384]),
  timm('efficientnet_b5.sw_in12k_ft_in1k', { size: 448, crop: 1.0, mode: 'squash' }, [85.892, 448]),
  timm('efficientnet_b5.sw_in12k', { size: 416, crop: 0.95 }, undefined, { labels: 'imagenet-12k', numClasses: 11821 }),
  timm('efficientnet_lite0.ra_in1k', {}, [75.49, 224]),
  // Ports of Google's TensorFlow checkpoints (TF SAME padding, BN eps 1e-3).
  ...tfEfficientNetB(),
  timm('tf_efficientnet_l2.ns_jft_in1k', { size: 800, crop: 0.96 }, [88.362, 800]),
  timm('tf_efficientnet_l2.ns_jft_in1k_475', { size: 475, crop: 0.936 }, [88.25, 475]),
  timm('tf_efficientnet_lite0.in1k', { half: true }, [74.846, 224]),
  timm('tf_efficientnet_lite1.in1k', { size: 240, crop: 0.882, half: true }, [76.672, 240]),
  timm('tf_efficientnet_lite2.in1k', { size: 260, crop: 0.89, half: true }, [77.472, 260]),
  timm('tf_efficientnet_lite3.in1k', { size: 300, crop: 0.904, interp: 'bilinear', half: true }, [79.832, 300]),
  timm('tf_efficientnet_lite4.in1k', { size: 380, crop: 0.92, interp: 'bilinear', half: true }, [81.546, 380]),
  timm('tf_efficientnetv2_s.in1k', { size: 300, test: 384, crop: 1.0, half: true }, [83.896, 384]),
  timm('tf_efficientnetv2_s.in21k_ft_in1k', { size: 300, test: 384, crop: 1.0, half: true }, [84.316, 384]),
  timm('tf_efficientnetv2_m.in1k', { size: 384, test: 480, crop: 1.0, mode: 'squash', half: true }, [85.21, 480]),
  timm('tf_efficientnetv2_m.in21k_ft_in1k', { size: 384, test: 480, crop: 1.0, mode: 'squash', half: true }, [86.014, 480]),
  timm('tf_efficientnetv2_l.in1k', { size: 384, test: 480, crop: 1.0, mode: 'squash', half: true }, [85.66, 480]),
  timm('tf_efficientnetv2_l.in21k_ft_in1k', { size: 384, test: 480, crop: 1.0, mode: 'squash', half: true }, [86.802, 480]),
  timm('tf_efficientnetv2_xl.in21k_ft_in1k', { size: 384, test: 512, crop: 1.0, mode: 'squash', half: true }, [86.748, 512]),
  timm('tf_efficientnetv2_b0.in1k', { size: 192, test: 224 }, [78.38, 224]),
  timm('tf_efficientnetv2_b1.in1k', { size: 192, test: 240, crop: 0.882 }, [79.518, 240]),
  timm('tf_efficientnetv2_b2.in1k', { size: 208, test: 260, crop: 0.89 }, [80.226, 260]),
  timm('tf_efficientnetv2_b3.in1k', { size: 240, test: 300, crop: 0.904 }, [81.96, 300]),
  timm('tf_efficientnetv2_b3.in21k_ft_in1k', { size: 240, test: 300, crop: 0.9, mode: 'squash', half: true }, [82.634, 300]),
];

const TV = 'https://download.pytorch.org/models/';

/** [name, arch, file, crop_size, resize_size, interpolation, acc@1, _weight_size, mean/std 0.5?] */
type TvRow = [string, string, string, number, number, 'bicubic' | 'bilinear', number, number, boolean?];
const TV_ROWS: TvRow[] = [
  ['efficientnet_b0.tv_in1k', 'efficientnet_b0', 'efficientnet_b0_rwightman-3dd342df.pth', 224, 256, 'bicubic', 77.692, 20.450974],
  ['efficientnet_b1.tv_in1k', 'efficientnet_b1', 'efficientnet_b1_rwightman-533bc792.pth', 240, 256, 'bicubic', 78.642, 30.133798],
  ['efficientnet_b1.tv2_in1k', 'efficientnet_b1', 'efficientnet_b1-c27df63c.pth', 240, 255, 'bilinear', 79.838, 30.136422],
  ['efficientnet_b2.tv_in1k', 'efficientnet_b2', 'efficientnet_b2_rwightman-bcdf34b7.pth', 288, 288, 'bicubic', 80.608, 35.173593],
  ['efficientnet_b3.tv_in1k', 'efficientnet_b3', 'efficientnet_b3_rwightman-cf984f9c.pth', 300, 320, 'bicubic', 82.008, 47.183904],
  ['efficientnet_b4.tv_in1k', 'efficientnet_b4', 'efficientnet_b4_rwightman-7eb33cd5.pth', 380, 384, 'bicubic', 83.384, 74.489011],
  ['efficientnet_b5.tv_in1k', 'efficientnet_b5', 'efficientnet_b5_lukemelas-b6417697.pth', 456, 456, 'bicubic', 83.444, 116.863912],
  ['efficientnet_b6.tv_in1k', 'efficientnet_b6', 'efficientnet_b6_lukemelas-c76e70fd.pth', 528, 528, 'bicubic', 84.008, 165.361524],
  ['efficientnet_b7.tv_in1k', 'efficientnet_b7', 'efficientnet_b7_lukemelas-dcc49843.pth', 600, 600, 'bicubic', 84.122, 254.675393],
  ['efficientnet_v2_s.tv_in1k', 'efficientnet_v2_s', 'efficientnet_v2_s-dd5fe13b.pth', 384, 384, 'bilinear', 84.228, 82.703832],
  ['efficientnet_v2_m.tv_in1k', 'efficientnet_v2_m', 'efficientnet_v2_m-dc08266a.pth', 480, 480, 'bilinear', 85.112, 208.010186],
  ['efficientnet_v2_l.tv_in1k', 'efficientnet_v2_l', 'efficientnet_v2_l-59c71312.pth', 480, 480, 'bicubic', 85.808, 454.573071, true],
];

const TORCHVISION_ENTRIES: RegistryEntry[] = TV_ROWS.map(([name, arch, file, crop, resize, interpolation, top1, mb, half]) => ({
  name,
  arch,
  family: 'torchvision',
  format: 'pth',
  naming: 'torchvision',
  url: TV + file,
  sha256Prefix: /-([0-9a-f]+)\.pth$/.exec(file)![1],
  approxSizeMB: mb,
  preprocessing: {
    inputSize: crop,
    resizeSize: resize,
    interpolation,
    mean: (half ? [...HALF] : [...IMAGENET_MEAN]) as Rgb,
    std: (half ? [...HALF] : [...IMAGENET_STD]) as Rgb,
  },
  labels: 'imagenet-1k',
  numClasses: 1000,
  top1,
  top1Resolution: crop,
  reference: TV_REF,
  origin: 'builtin',
}));

/** [B, keras.io top-1 %, keras.io size MB, md5 of efficientnetb<B>.h5 (WEIGHTS_HASHES[...][0])] */
const KERAS_ROWS: [number, number, number, string][] = [
  [0, 77.1, 29, '902e53a9f72be733fc0bcb005b3ebbac'],
  [1, 79.1, 31, '1d254153d4ab51201f1646940f018540'],
  [2, 80.1, 36, 'b15cce36ff4dcbd00b6dd88e7857a6ad'],
  [3, 81.6, 48, 'ffd1fdc53d0ce67064dc6a9c7960ede0'],
  [4, 82.9, 75, '18c95ad55216b8f92d7e70b3a046e2fc'],
  [5, 83.6, 118, 'ace28f2a6363774853a83a0b21b9421a'],
  [6, 84.0, 166, '165f6e37dce68623721b423839de8be5'],
  [7, 84.3, 256, '8c03f828fec3ef71311cd463b6759d99'],
];
/**
 * Keras' default_size for B0..B7. keras.io does not say at which size its top-1 was measured; with the top and
 * ImageNet weights a Keras application accepts only its default size (imagenet_utils.obtain_input_shape), so we
 * record that one.
 */
const KERAS_SIZES = [224, 240, 260, 300, 380, 456, 528, 600];

const KERAS_ENTRIES: RegistryEntry[] = KERAS_ROWS.map(([b, top1, mb, md5]) => ({
  name: `efficientnet_b${b}.keras_in1k`,
  arch: `efficientnet_b${b}`,
  family: 'keras',
  format: 'h5',
  naming: 'keras',
  url: `https://storage.googleapis.com/keras-applications/efficientnetb${b}.h5`,
  md5,
  approxSizeMB: mb,
  preprocessing: { inputSize: KERAS_SIZES[b]!, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] },
  labels: 'imagenet-1k',
  numClasses: 1000,
  top1,
  top1Resolution: KERAS_SIZES[b]!,
  reference: KERAS_REF,
  notes:
    "Keras builds its input scaling into the model (Rescaling 1/255, Normalization, Rescaling 1/sqrt(std)), which " +
    'amounts to ImageNet mean/std on [0, 1] pixels; the converter drops those layers, so feed the normalized input ' +
    'as for any other entry. Keras publishes md5 hashes only.',
  origin: 'builtin',
}));

/**
 * Keras' EfficientNetV2 applications: [variant, keras.io top-1 %, keras.io size MB, Keras' default_size, md5 of
 * efficientnetv2-<variant>.h5 (WEIGHTS_HASHES[...][0], the file with the top)].
 */
const KERAS_V2_ROWS: [variant: string, top1: number, mb: number, size: number, md5: string][] = [
  ['b0', 78.7, 29, 224, '21ecbf6da12460d5c40bb2f29ceb2188'],
  ['b1', 79.8, 34, 240, '069f0534ff22adf035c89e2d9547a9dc'],
  ['b2', 80.5, 42, 260, '424e49f28180edbde1e94797771950a7'],
  ['b3', 82.0, 59, 300, '1f1fc43bd98a6e4fd8fdfd551e02c7a0'],
  ['s', 83.9, 88, 384, 'e1d88a8495beba45748fedd0cecbe016'],
  ['m', 85.3, 220, 480, 'a3bf6aa3276309f4fc6a34aa114c95cd'],
  ['l', 85.7, 479, 480, '27e6d408b53c7ebc868fefa357689935'],
];

/**
 * Keras V2-S/M/L scale [0, 255] pixels with Rescaling(scale=1/128, offset=-1): (p - 128) / 128, which on [0, 1]
 * pixels is mean = std = 128/255 (not quite timm's 0.5). V2-B0..B3 apply Rescaling(1/255) and a Normalization with
 * ImageNet mean and variance std^2 (EfficientNetV2(): "Apply original V1 preprocessing for Bx variants").
 */
const KERAS_V2_SML: Rgb = [128 / 255, 128 / 255, 128 / 255];

const KERAS_V2_ENTRIES: RegistryEntry[] = KERAS_V2_ROWS.map(([v, top1, mb, size, md5]) => {
  const b = v.startsWith('b');
  return {
    name: `efficientnetv2_${v}.keras_in1k`,
    arch: `efficientnetv2_${v}`,
    family: 'keras',
    format: 'h5',
    naming: 'keras',
    url: `https://storage.googleapis.com/tensorflow/keras-applications/efficientnet_v2/efficientnetv2-${v}.h5`,
    md5,
    approxSizeMB: mb,
    preprocessing: { inputSize: size, mean: b ? [...IMAGENET_MEAN] : [...KERAS_V2_SML], std: b ? [...IMAGENET_STD] : [...KERAS_V2_SML] },
    labels: 'imagenet-1k',
    numClasses: 1000,
    top1,
    top1Resolution: size,
    reference: KERAS_V2_REF,
    notes:
      (b
        ? 'Keras builds its input scaling into the model (Rescaling 1/255, then Normalization with ImageNet mean and variance), ' +
          'which is ImageNet mean/std on [0, 1] pixels'
        : 'Keras builds its input scaling into the model (Rescaling 1/128 with offset -1 on [0, 255] pixels), which is ' +
          'mean = std = 128/255 on [0, 1] pixels') +
      '; the converter drops those layers, so feed the normalized input as for any other entry. Keras publishes md5 hashes only.',
    origin: 'builtin',
  };
});

/** Every built-in entry, in display order. */
export const BUILTIN_ENTRIES: readonly RegistryEntry[] = [...embeddedEntries(), ...TIMM_ENTRIES, ...TORCHVISION_ENTRIES, ...KERAS_ENTRIES, ...KERAS_V2_ENTRIES, ...EFFDET_ENTRIES];
