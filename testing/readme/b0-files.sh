# Files the README's export/run example reads: torchvision-named B0 weights and an input batch.
node --input-type=module -e "
import { buildEfficientNet, float32Tensor, randomWeights, specFor, toTorchvision, writeNpy, writeSafetensors } from '@effnet/core';
const s = specFor('efficientnet_b0', { family: 'torchvision' });
await writeSafetensors('b0.safetensors', toTorchvision(s, randomWeights(buildEfficientNet(s))));
await writeNpy('x.npy', float32Tensor([1, 3, 224, 224]));
"
