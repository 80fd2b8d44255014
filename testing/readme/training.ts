// The README's training example needs a batch (NCHW) and its labels.
import { float32Tensor as __t } from '@effnet/core';
const batch = __t([4, 3, 128, 128]);
const labels = new Int32Array([0, 1, 2, 3]);
