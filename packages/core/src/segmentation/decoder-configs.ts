import { detectorConfig, isDetectorName } from '../detection/efficientdet-configs.js';
import { InvalidSpecError, UnknownVariantError } from '../errors.js';
import { resolveVariant } from '../variants.js';

/**
 * The segmentation decoders as data: each row is one of segmentation_models_pytorch's decoders with its defaults
 * (smp 0.5: `Unet`, `FPN`, `DeepLabV3Plus`), so that `<decoder>_<encoder>` builds smp's model on an EfficientNet
 * encoder, parameter for parameter, under smp's state_dict names; and automl's EfficientDet segmentation head
 * (`bifpnseg_<detector>`: transposed convs up the BiFPN's pyramid, on a detector's backbone and BiFPN).
 */
export type DecoderKind = 'unet' | 'fpn' | 'deeplabv3plus' | 'bifpnseg';

interface DecoderBase {
  kind: DecoderKind;
  /** The encoder's largest reduction: 32, or 16 with the last stage dilated (DeepLab's atrous encoder). */
  outputStride: 16 | 32;
  /** segmentation_head.0: its kernel, and the bilinear (align_corners) upsampling after it (1 = none). */
  headKernel: number;
  headUpsampling: number;
  /** Decoder BatchNorm (PyTorch defaults). */
  bnEps: number;
  bnMomentum: number;
}

/** smp's UnetDecoder: per block, resize to the next skip's size, concat, two conv-BN-ReLU. */
export interface UnetConfig extends DecoderBase {
  kind: 'unet';
  decoderChannels: number[];
  interpolation: 'nearest';
}

/** smp's FPNDecoder: 1x1 laterals summed top-down, conv-GroupNorm-ReLU segmentation blocks, summed. */
export interface FpnConfig extends DecoderBase {
  kind: 'fpn';
  pyramidChannels: number;
  segmentationChannels: number;
  groupNormGroups: number;
  dropout: number;
}

/** smp's DeepLabV3PlusDecoder: ASPP (separable atrous convs, image pooling), x4 up, concat with stride-4 features. */
export interface DeepLabV3PlusConfig extends DecoderBase {
  kind: 'deeplabv3plus';
  channels: number;
  atrousRates: [number, number, number];
  highResChannels: number;
  dropout: number;
}

/**
 * automl's SegmentationHead (efficientdet_keras.py) on an EfficientDet's BiFPN: from the deepest level, per level a
 * 3x3 stride-2 Conv2DTranspose ('same', no bias) to the BiFPN's width, BatchNorm, the detector's activation, concat
 * with the next shallower level; then a 3x3 stride-2 Conv2DTranspose to the classes (stride 2^(minLevel-1): P2 for
 * P3..P7). effnet adds a bilinear resize (half-pixel) of those logits to the input's size, as every segmenter's
 * output is; the head's BatchNorm uses the detector's eps and momentum.
 */
export interface BifpnSegConfig extends DecoderBase {
  kind: 'bifpnseg';
}

export type DecoderConfig = UnetConfig | FpnConfig | DeepLabV3PlusConfig | BifpnSegConfig;

const BN = { bnEps: 1e-5, bnMomentum: 0.1 } as const;

export const DECODERS: readonly DecoderConfig[] = [
  { kind: 'unet', decoderChannels: [256, 128, 64, 32, 16], interpolation: 'nearest', outputStride: 32, headKernel: 3, headUpsampling: 1, ...BN },
  { kind: 'fpn', pyramidChannels: 256, segmentationChannels: 128, groupNormGroups: 32, dropout: 0.2, outputStride: 32, headKernel: 1, headUpsampling: 4, ...BN },
  { kind: 'deeplabv3plus', channels: 256, atrousRates: [12, 24, 36], highResChannels: 48, dropout: 0.5, outputStride: 16, headKernel: 1, headUpsampling: 4, ...BN },
  // The backbone's reduction is 32 (P7: 128); the head's BN takes the detector's eps/momentum (effdet's 1e-3, 0.01 for
  // every EfficientDet); its last transposed conv doubles P3 to stride 4.
  { kind: 'bifpnseg', outputStride: 32, headKernel: 3, headUpsampling: 2, bnEps: 1e-3, bnMomentum: 0.01 },
];

export const DECODER_KINDS: readonly DecoderKind[] = DECODERS.map((d) => d.kind);

/** A segmenter: a decoder over an EfficientNet encoder (any variant name `specFor` resolves). */
export interface SegmenterConfig {
  name: string;
  decoder: DecoderConfig;
  /** The EfficientNet the features come from (bifpnseg: the detector's backbone). */
  encoder: string;
  /** bifpnseg: the EfficientDet whose backbone and BiFPN feed the head. */
  detector?: string;
}

/** Input sides a segmenter takes are multiples of this: 32, or 2^maxLevel for bifpnseg (each level exactly half the one above). */
export function segmenterInputMultiple(config: SegmenterConfig): number {
  return config.detector !== undefined ? 2 ** detectorConfig(config.detector).maxLevel : 32;
}

/** true when `name` reads as `<decoder>_<anything>` (the encoder may still be unknown). */
export function isSegmenterName(name: string): boolean {
  const kind = name.toLowerCase().split('_')[0];
  return name.includes('_') && DECODER_KINDS.includes(kind as DecoderKind);
}

/**
 * `unet_efficientnet_b0`, `fpn_tf_efficientnet_b3`, `deeplabv3plus_efficientnetv2_s`, ...: the decoder row and the
 * encoder variant. Errors name the known decoders, or the encoder that is not a variant.
 */
export function segmenterConfig(name: string): SegmenterConfig {
  const lower = name.toLowerCase();
  const cut = lower.indexOf('_');
  const kind = cut > 0 ? lower.slice(0, cut) : lower;
  const decoder = DECODERS.find((d) => d.kind === kind);
  if (!decoder || cut < 0) throw new InvalidSpecError('segmenter', name, `<decoder>_<encoder> with decoder one of ${DECODER_KINDS.join(', ')} (e.g. unet_efficientnet_b0, bifpnseg_efficientdet_d0)`);
  const encoderName = lower.slice(cut + 1);
  if (decoder.kind === 'bifpnseg') {
    if (!isDetectorName(encoderName)) throw new InvalidSpecError(`segmenter "${name}" detector`, encoderName, 'an EfficientDet: tf_efficientdet_d0..d7x, tf_efficientdet_lite0..4 (and lite3x), efficientdet_d0..d3 or efficientdet_phi<X> (e.g. bifpnseg_efficientdet_d0)');
    const det = detectorConfig(encoderName);
    return { name: `${kind}_${det.name}`, decoder, encoder: det.backbone, detector: det.name };
  }
  let encoder: string;
  try {
    encoder = resolveVariant(encoderName).name;
  } catch (e) {
    if (e instanceof UnknownVariantError) throw new InvalidSpecError(`segmenter "${name}" encoder`, encoderName, 'an EfficientNet variant such as efficientnet_b0 or tf_efficientnet_b3 (effnet variants lists them)');
    throw e;
  }
  return { name: `${kind}_${encoder}`, decoder, encoder };
}
