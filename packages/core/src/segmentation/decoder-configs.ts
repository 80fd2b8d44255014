import { InvalidSpecError, UnknownVariantError } from '../errors.js';
import { resolveVariant } from '../variants.js';

/**
 * The segmentation decoders as data: each row is one of segmentation_models_pytorch's decoders with its defaults
 * (smp 0.5: `Unet`, `FPN`, `DeepLabV3Plus`), so that `<decoder>_<encoder>` builds smp's model on an EfficientNet
 * encoder, parameter for parameter, under smp's state_dict names.
 */
export type DecoderKind = 'unet' | 'fpn' | 'deeplabv3plus';

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

export type DecoderConfig = UnetConfig | FpnConfig | DeepLabV3PlusConfig;

const BN = { bnEps: 1e-5, bnMomentum: 0.1 } as const;

export const DECODERS: readonly DecoderConfig[] = [
  { kind: 'unet', decoderChannels: [256, 128, 64, 32, 16], interpolation: 'nearest', outputStride: 32, headKernel: 3, headUpsampling: 1, ...BN },
  { kind: 'fpn', pyramidChannels: 256, segmentationChannels: 128, groupNormGroups: 32, dropout: 0.2, outputStride: 32, headKernel: 1, headUpsampling: 4, ...BN },
  { kind: 'deeplabv3plus', channels: 256, atrousRates: [12, 24, 36], highResChannels: 48, dropout: 0.5, outputStride: 16, headKernel: 1, headUpsampling: 4, ...BN },
];

export const DECODER_KINDS: readonly DecoderKind[] = DECODERS.map((d) => d.kind);

/** A segmenter: a decoder over an EfficientNet encoder (any variant name `specFor` resolves). */
export interface SegmenterConfig {
  name: string;
  decoder: DecoderConfig;
  encoder: string;
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
  if (!decoder || cut < 0) throw new InvalidSpecError('segmenter', name, `<decoder>_<encoder> with decoder one of ${DECODER_KINDS.join(', ')} (e.g. unet_efficientnet_b0)`);
  const encoderName = lower.slice(cut + 1);
  let encoder: string;
  try {
    encoder = resolveVariant(encoderName).name;
  } catch (e) {
    if (e instanceof UnknownVariantError) throw new InvalidSpecError(`segmenter "${name}" encoder`, encoderName, 'an EfficientNet variant such as efficientnet_b0 or tf_efficientnet_b3 (effnet variants lists them)');
    throw e;
  }
  return { name: `${kind}_${encoder}`, decoder, encoder };
}
