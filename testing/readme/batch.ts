// What the README's backend example reads: torchvision-named B0 weights and an NCHW batch.
import { buildEfficientNet as __build, float32Tensor as __t, randomWeights as __rw, specFor as __spec, toTorchvision as __tv, writeSafetensors as __write } from '@effnet/core';
{
  const s = __spec('efficientnet_b0', { family: 'torchvision' });
  await __write('efficientnet_b0.safetensors', __tv(s, __rw(__build(s))));
}
const batch = __t([1, 3, 224, 224]);
