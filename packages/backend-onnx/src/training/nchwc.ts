import type { GraphNode } from '@effnet/core';
import type { TrainingEmitter } from './emitter.js';

/** Which convs run as ORT's NCHWc kernels (com.microsoft.nchwc), and how to emit one. */
export interface NchwcPlan {
  blockSize: number;
  convs: Set<string>;
  emitConv(e: TrainingEmitter, node: Extract<GraphNode, { kind: 'conv2d' }>, x: string, out: string): void;
}
