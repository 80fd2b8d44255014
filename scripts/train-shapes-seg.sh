#!/bin/sh
# Trains the embedded effnet-shapes-seg (packages/zoo/assets/effnet-shapes-seg.*): smp's U-Net on the effnet-shapes
# encoder (unet_efficientnet_phi-4), 64 px generated scenes (tasks/src/data/shape-scenes.ts), CE + Dice, seed 0.
# Usage, from the repository root: scripts/train-shapes-seg.sh [OUT] [DATA]  (about 45 minutes on 2 busy CPU cores)
# Then: node scripts/embed-checkpoint.mjs OUT effnet-shapes-seg best (and the sha256/size it prints into
# packages/zoo/src/registry/embedded.ts).
set -e
out=${1:-shapes-seg-model}
data=${2:-shape-scenes}
node -e "import('@effnet/tasks').then(async (t) => {
  await t.generateShapeSceneDataset('$data/train', { count: 2400, size: 64, seed: 11 });
  await t.generateShapeSceneDataset('$data/val', { count: 300, size: 64, seed: 12 });
})"
npx effnet train --task segmentation --data "$data/train" --val "$data/val" \
  --model unet_efficientnet_phi-4 --backbone effnet-shapes --loss ce+dice \
  --epochs 40 --batch 16 --size 64 --lr 3e-3 --seed 0 --out "$out"
