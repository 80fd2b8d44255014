/**
 * The graph IR: plain, JSON-serialisable data. Logical layout NCHW. Each node has one output tensor, named by the
 * node's `name`; `inputs` name graph inputs or earlier nodes (the node list is in topological order).
 * Parameter names are timm's state_dict names with PyTorch layouts (conv OIHW, dense [out, in]).
 */

export const GRAPH_FORMAT = 'effnet-graph@1';

/** `symmetric`: PyTorch's (k-1)*d/2 on every side. `same`: TF SAME, smaller half first. `explicit`: [top, left, bottom, right]. */
export type Padding = { mode: 'symmetric' } | { mode: 'same' } | { mode: 'explicit'; pads: [number, number, number, number] };

export const ACTIVATION_FNS = ['identity', 'relu', 'relu6', 'silu', 'sigmoid', 'gelu', 'hardSwish', 'hardSigmoid', 'tanh'] as const;
export type ActivationFn = (typeof ACTIVATION_FNS)[number];

interface NodeBase {
  name: string;
  inputs: string[];
}

export interface Conv2dNode extends NodeBase {
  kind: 'conv2d';
  inChannels: number;
  outChannels: number;
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
  groups: number;
  padding: Padding;
  params: { weight: string; bias?: string };
}

export interface ConvTransposeNode extends NodeBase {
  kind: 'convTranspose';
  inChannels: number;
  outChannels: number;
  kernel: [number, number];
  stride: [number, number];
  groups: number;
  /** Cropped from the full output: [top, left, bottom, right]. */
  pads: [number, number, number, number];
  outputPadding: [number, number];
  /** Weight layout [in, out / groups, kh, kw], as PyTorch's ConvTranspose2d. */
  params: { weight: string; bias?: string };
}

export interface BatchNormNode extends NodeBase {
  kind: 'batchNorm';
  channels: number;
  eps: number;
  /** PyTorch convention. */
  momentum: number;
  params: { weight: string; bias: string; runningMean: string; runningVar: string };
}

/**
 * Group normalisation (Wu and He 2018, PyTorch's GroupNorm): channels split into `groups` equal groups, each
 * normalised over its channels and all positions of one sample, then scaled and shifted per channel. No running
 * statistics: the same computation in training and inference.
 */
export interface GroupNormNode extends NodeBase {
  kind: 'groupNorm';
  groups: number;
  channels: number;
  eps: number;
  params: { weight: string; bias: string };
}

export interface ActivationNode extends NodeBase {
  kind: 'activation';
  fn: ActivationFn;
}

/** Softmax along an axis (1 = channels for NCHW or [N, C]). */
export interface SoftmaxNode extends NodeBase {
  kind: 'softmax';
  axis: number;
}

/** Elementwise sum of two or more same-shape inputs. */
export interface AddNode extends NodeBase {
  kind: 'add';
}

/** Elementwise product; the second input may be [N, C, 1, 1] (a gate). */
export interface MulNode extends NodeBase {
  kind: 'mul';
}

export interface GlobalAvgPoolNode extends NodeBase {
  kind: 'globalAvgPool';
  /** true: [N, C, 1, 1]; false: [N, C]. */
  keepDims: boolean;
}

export interface FlattenNode extends NodeBase {
  kind: 'flatten';
}

export interface DenseNode extends NodeBase {
  kind: 'dense';
  inFeatures: number;
  outFeatures: number;
  params: { weight: string; bias?: string };
}

/** Identity at inference. */
export interface DropoutNode extends NodeBase {
  kind: 'dropout';
  rate: number;
}

/** Stochastic depth on a residual branch: drops whole samples in training, identity at inference. */
export interface DropPathNode extends NodeBase {
  kind: 'dropPath';
  rate: number;
}

export interface MaxPoolNode extends NodeBase {
  kind: 'maxPool';
  kernel: [number, number];
  stride: [number, number];
  padding: Padding;
}

/** Upsampling/downsampling: by an integer scale, or to the spatial size of a second input (`inputs[1]`). */
export interface ResizeNode extends NodeBase {
  kind: 'resize';
  mode: 'nearest' | 'bilinear';
  scale?: number;
  alignCorners: boolean;
}

export interface ConcatNode extends NodeBase {
  kind: 'concat';
  axis: number;
}

/**
 * Learnable weighted sum of same-shape inputs (BiFPN fusion). `fast`: relu(w_i) / (sum_j relu(w_j) + epsilon);
 * `softmax`: softmax(w). Weights are non-negative either way.
 */
export interface WeightedSumNode extends NodeBase {
  kind: 'weightedSum';
  normalization: 'fast' | 'softmax';
  epsilon: number;
  params: { weight: string };
}

export type GraphNode =
  | Conv2dNode
  | ConvTransposeNode
  | BatchNormNode
  | GroupNormNode
  | ActivationNode
  | SoftmaxNode
  | AddNode
  | MulNode
  | GlobalAvgPoolNode
  | FlattenNode
  | DenseNode
  | DropoutNode
  | DropPathNode
  | MaxPoolNode
  | ResizeNode
  | ConcatNode
  | WeightedSumNode;

/** Every kind; NODE_KINDS (node-kinds.ts) lists them from their records. */
export type NodeKind = GraphNode['kind'];

/** How a backend fills a parameter when no weights are given (timm's init). */
export type ParamInit =
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; limit: number }
  | { kind: 'constant'; value: number };

export interface ParamSpec {
  name: string;
  shape: number[];
  /** false for BatchNorm running statistics (buffers, not parameters). */
  trainable: boolean;
  init: ParamInit;
  /**
   * Read by more than one node (a detection head shared across feature levels). Only shared parameters may have
   * several readers; every reader must need the same shape. Counted, stored and trained once.
   */
  shared?: boolean;
}

export interface GraphInput {
  name: string;
  channels: number;
  /** null = any size (dynamic). */
  height: number | null;
  width: number | null;
}

/** A feature map a task may attach to. */
export interface Endpoint {
  name: string;
  node: string;
  stride: number;
  channels: number;
}

export interface Graph {
  format: typeof GRAPH_FORMAT;
  name: string;
  inputs: GraphInput[];
  nodes: GraphNode[];
  outputs: string[];
  endpoints: Endpoint[];
  parameters: ParamSpec[];
  /** Free-form facts a compiler may record (variant, family, resolution, ...). */
  metadata: Record<string, string | number | boolean>;
}

/** Exhaustiveness guard for `switch (node.kind)`: a new kind fails to compile until every switch handles it. */
export function assertNever(x: never, what = 'value'): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(x)}`);
}
