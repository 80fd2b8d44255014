import type { Padding } from './graph.js';

/** TF SAME padding along one axis: [before, after], the smaller half first (ONNX SAME_UPPER). */
export function samePads(inSize: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const total = Math.max((Math.ceil(inSize / stride) - 1) * stride + (kernel - 1) * dilation + 1 - inSize, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

/** PyTorch's `padding = ((k - 1) * d) // 2` on both sides. */
export function symmetricPad(kernel: number, dilation = 1): number {
  return Math.floor(((kernel - 1) * dilation) / 2);
}

/**
 * [top, left, bottom, right] pads that do not depend on the input size (symmetric, explicit); null for `same`, whose
 * pads do (see resolvePads).
 */
export function fixedPads(padding: Padding, kernel: readonly [number, number], dilation: readonly [number, number] = [1, 1]): [number, number, number, number] | null {
  switch (padding.mode) {
    case 'explicit':
      return padding.pads;
    case 'symmetric': {
      const ph = symmetricPad(kernel[0], dilation[0]);
      const pw = symmetricPad(kernel[1], dilation[1]);
      return [ph, pw, ph, pw];
    }
    case 'same':
      return null;
  }
}

/** Explicit [top, left, bottom, right] pads for an input of the given spatial size. */
export function resolvePads(
  padding: Padding,
  inH: number,
  inW: number,
  kernel: readonly [number, number],
  stride: readonly [number, number],
  dilation: readonly [number, number] = [1, 1],
): [number, number, number, number] {
  const fixed = fixedPads(padding, kernel, dilation);
  if (fixed) return fixed;
  const [t, b] = samePads(inH, kernel[0], stride[0], dilation[0]);
  const [l, r] = samePads(inW, kernel[1], stride[1], dilation[1]);
  return [t, l, b, r];
}

/** Output size along one axis of a conv/pool with explicit pads. */
export function convOutSize(inSize: number, kernel: number, stride: number, dilation: number, padBefore: number, padAfter: number): number {
  return Math.floor((inSize + padBefore + padAfter - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** Output size along one axis for a padding rule; `same` gives ceil(in / stride) whatever the kernel. */
export function outSizeFor(padding: Padding, inSize: number, kernel: number, stride: number, dilation: number, axis: 0 | 1): number {
  if (padding.mode === 'same') return Math.ceil(inSize / stride);
  if (padding.mode === 'symmetric') {
    const p = symmetricPad(kernel, dilation);
    return convOutSize(inSize, kernel, stride, dilation, p, p);
  }
  return convOutSize(inSize, kernel, stride, dilation, padding.pads[axis], padding.pads[axis + 2]!);
}
