#!/bin/sh
# Trains the embedded effnet-shapes-seg (packages/zoo/assets/effnet-shapes-seg.*): DeepLabV3+ (smp's decoder) on the
# effnet-shapes encoder (efficientnet_phi-4), 64 px generated scenes (tasks/src/data/shape-scenes.ts), seed 0.
# Usage, from the repository root: scripts/train-shapes-seg.sh [OUT] [DATA]  (about 30 minutes on 2 busy CPU cores)
set -e
out=${1:-shapes-seg-model}
data=${2:-shape-scenes}
node -e "import('@effnet/tasks').then(async (t) => {
  await t.generateShapeSceneDataset('$data/train', { count: 2400, size: 64, seed: 11 });
  await t.generateShapeSceneDataset('$data/val', { count: 300, size: 64, seed: 12 });
})"
npx effnet train --task segmentation --data "$data/train" --val "$data/val" \
  --model deeplabv3plus_efficientnet_phi-4 --backbone effnet-shapes --loss ce+dice \
  --epochs 30 --batch 16 --size 64 --lr 3e-3 --label-smoothing 0 --seed 0 --out "$out"
