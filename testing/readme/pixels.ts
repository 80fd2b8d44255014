// A batch of pixels in [0, 1] at the embedded model's size.
import { float32Tensor as __t } from '@effnet/core';
const pixels = __t([2, 3, 48, 48], new Float32Array(2 * 3 * 48 * 48).fill(0.5));
