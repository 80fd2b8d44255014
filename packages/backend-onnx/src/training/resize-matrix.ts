import type { GraphNode } from '@effnet/core';

/**
 * The [outSize, inSize] matrix of a resize along one axis, as the compiled Resize computes it (ONNX Resize:
 * nearest = asymmetric + floor, bilinear = pytorch_half_pixel or align_corners, source clamped to the input).
 * Row i holds the weights output pixel i gives each input pixel; the gradient of the resize is its transpose.
 */
export function resizeMatrix(node: Extract<GraphNode, { kind: 'resize' }>, inSize: number, outSize: number, scale?: number): Float64Array {
  const m = new Float64Array(outSize * inSize);
  // ORT takes the scale as given, or out/in (float32) when resizing to a size.
  const s = Math.fround(scale ?? outSize / inSize);
  for (let i = 0; i < outSize; i++) {
    if (node.mode === 'nearest') {
      const src = Math.min(inSize - 1, Math.max(0, Math.floor(Math.fround(i / s))));
      m[i * inSize + src] = 1;
      continue;
    }
    let src: number;
    if (outSize === 1) src = 0;
    else if (node.alignCorners) src = (i * (inSize - 1)) / (outSize - 1);
    else src = (i + 0.5) / s - 0.5;
    src = Math.min(inSize - 1, Math.max(0, src));
    const lo = Math.floor(src);
    const hi = Math.min(lo + 1, inSize - 1);
    const frac = src - lo;
    m[i * inSize + lo] = m[i * inSize + lo]! + 1 - frac;
    m[i * inSize + hi] = m[i * inSize + hi]! + frac;
  }
  return m;
}
