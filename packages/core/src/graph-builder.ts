import { GraphValidationError } from './errors.js';
import { type ActivationFn, type Endpoint, type Graph, GRAPH_FORMAT, type GraphInput, type GraphNode, type Padding, type ParamInit, type ParamSpec } from './graph.js';
import { validateGraph } from './validate.js';

export interface ConvOptions {
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride?: number;
  dilation?: number;
  groups?: number;
  padding: Padding;
  bias?: boolean;
  /** Module name of the parameters (`<params>.weight`, `<params>.bias`), default the node's name. */
  params?: string;
  /** The parameters are read by several nodes (declared by the first, reused by the rest; see ParamSpec.shared). */
  shared?: boolean;
  /** Weight init, default timm's normal(0, sqrt(2 / fan_out)). */
  init?: ParamInit;
  /** Bias init, default 0. */
  biasInit?: ParamInit;
}

/**
 * Appends nodes and declares their parameters (named `<node>.weight`, `<node>.bias`, `<node>.running_mean`, ...,
 * as PyTorch modules name them) with timm's initialisation. Used by the EfficientNet builder and by task heads.
 */
export class GraphBuilder {
  readonly nodes: GraphNode[] = [];
  readonly parameters: ParamSpec[] = [];
  private readonly declared = new Map<string, ParamSpec>();

  constructor(
    readonly name: string,
    readonly inputs: GraphInput[],
  ) {}

  private push<T extends GraphNode>(node: T): string {
    this.nodes.push(node);
    return node.name;
  }

  /** Declares a parameter; a shared one declared before is reused when its shape agrees. */
  private param(name: string, shape: number[], init: ParamSpec['init'], trainable = true, shared = false): string {
    const known = this.declared.get(name);
    if (known) {
      if (!shared || !known.shared) throw new GraphValidationError(name, 'params', 'declared twice; nodes that read one parameter must all pass shared: true');
      if (known.shape.length !== shape.length || known.shape.some((d, i) => d !== shape[i]))
        throw new GraphValidationError(name, 'params', `shared with shape [${known.shape.join(', ')}], this node needs [${shape.join(', ')}]`);
      return name;
    }
    const p: ParamSpec = { name, shape, trainable, init, ...(shared ? { shared } : {}) };
    this.declared.set(name, p);
    this.parameters.push(p);
    return name;
  }

  conv(name: string, input: string, o: ConvOptions): string {
    const groups = o.groups ?? 1;
    const k = o.kernel;
    // timm/automl: normal(0, sqrt(2 / fan_out)), fan_out = k * k * out / groups.
    const fanOut = (k * k * o.outChannels) / groups;
    const module = o.params ?? name;
    const shared = o.shared ?? false;
    const weight = this.param(`${module}.weight`, [o.outChannels, o.inChannels / groups, k, k], o.init ?? { kind: 'normal', std: Math.sqrt(2 / fanOut) }, true, shared);
    const params: { weight: string; bias?: string } = { weight };
    if (o.bias) params.bias = this.param(`${module}.bias`, [o.outChannels], o.biasInit ?? { kind: 'constant', value: 0 }, true, shared);
    return this.push({
      kind: 'conv2d',
      name,
      inputs: [input],
      inChannels: o.inChannels,
      outChannels: o.outChannels,
      kernel: [k, k],
      stride: [o.stride ?? 1, o.stride ?? 1],
      dilation: [o.dilation ?? 1, o.dilation ?? 1],
      groups,
      padding: o.padding,
      params,
    });
  }

  convTranspose(
    name: string,
    input: string,
    o: { inChannels: number; outChannels: number; kernel: number; stride: number; pads?: [number, number, number, number]; outputPadding?: [number, number]; groups?: number; bias?: boolean; init?: ParamInit },
  ): string {
    const groups = o.groups ?? 1;
    const fanOut = o.kernel * o.kernel * o.outChannels;
    const weight = this.param(`${name}.weight`, [o.inChannels, o.outChannels / groups, o.kernel, o.kernel], o.init ?? { kind: 'normal', std: Math.sqrt(2 / fanOut) });
    const params: { weight: string; bias?: string } = { weight };
    if (o.bias) params.bias = this.param(`${name}.bias`, [o.outChannels], { kind: 'constant', value: 0 });
    return this.push({
      kind: 'convTranspose',
      name,
      inputs: [input],
      inChannels: o.inChannels,
      outChannels: o.outChannels,
      kernel: [o.kernel, o.kernel],
      stride: [o.stride, o.stride],
      groups,
      pads: o.pads ?? [0, 0, 0, 0],
      outputPadding: o.outputPadding ?? [0, 0],
      params,
    });
  }

  batchNorm(name: string, input: string, channels: number, eps: number, momentum: number): string {
    return this.push({
      kind: 'batchNorm',
      name,
      inputs: [input],
      channels,
      eps,
      momentum,
      params: {
        weight: this.param(`${name}.weight`, [channels], { kind: 'constant', value: 1 }),
        bias: this.param(`${name}.bias`, [channels], { kind: 'constant', value: 0 }),
        runningMean: this.param(`${name}.running_mean`, [channels], { kind: 'constant', value: 0 }, false),
        runningVar: this.param(`${name}.running_var`, [channels], { kind: 'constant', value: 1 }, false),
      },
    });
  }

  /** PyTorch's GroupNorm: weight 1, bias 0 at start. */
  groupNorm(name: string, input: string, groups: number, channels: number, eps = 1e-5): string {
    return this.push({
      kind: 'groupNorm',
      name,
      inputs: [input],
      groups,
      channels,
      eps,
      params: {
        weight: this.param(`${name}.weight`, [channels], { kind: 'constant', value: 1 }),
        bias: this.param(`${name}.bias`, [channels], { kind: 'constant', value: 0 }),
      },
    });
  }

  activation(name: string, input: string, fn: ActivationFn): string {
    return this.push({ kind: 'activation', name, inputs: [input], fn });
  }

  softmax(name: string, input: string, axis = 1): string {
    return this.push({ kind: 'softmax', name, inputs: [input], axis });
  }

  add(name: string, inputs: string[]): string {
    return this.push({ kind: 'add', name, inputs });
  }

  mul(name: string, input: string, gate: string): string {
    return this.push({ kind: 'mul', name, inputs: [input, gate] });
  }

  globalAvgPool(name: string, input: string, keepDims: boolean): string {
    return this.push({ kind: 'globalAvgPool', name, inputs: [input], keepDims });
  }

  flatten(name: string, input: string): string {
    return this.push({ kind: 'flatten', name, inputs: [input] });
  }

  /** `paramPrefix` names the parameters when the node's name is a public output name (`logits` reads `classifier.*`). */
  dense(name: string, input: string, inFeatures: number, outFeatures: number, bias = true, paramPrefix = name): string {
    // timm: uniform(-1/sqrt(fan_out), 1/sqrt(fan_out)), fan_out = out features.
    const weight = this.param(`${paramPrefix}.weight`, [outFeatures, inFeatures], { kind: 'uniform', limit: 1 / Math.sqrt(outFeatures) });
    const params: { weight: string; bias?: string } = { weight };
    if (bias) params.bias = this.param(`${paramPrefix}.bias`, [outFeatures], { kind: 'constant', value: 0 });
    return this.push({ kind: 'dense', name, inputs: [input], inFeatures, outFeatures, params });
  }

  dropout(name: string, input: string, rate: number): string {
    return this.push({ kind: 'dropout', name, inputs: [input], rate });
  }

  dropPath(name: string, input: string, rate: number): string {
    return this.push({ kind: 'dropPath', name, inputs: [input], rate });
  }

  maxPool(name: string, input: string, kernel: number, stride: number, padding: Padding): string {
    return this.push({ kind: 'maxPool', name, inputs: [input], kernel: [kernel, kernel], stride: [stride, stride], padding });
  }

  /** Resize by `scale`, or to the size of `like` when given. */
  resize(name: string, input: string, mode: 'nearest' | 'bilinear', to: { scale: number } | { like: string }, alignCorners = false): string {
    if ('like' in to) return this.push({ kind: 'resize', name, inputs: [input, to.like], mode, alignCorners });
    return this.push({ kind: 'resize', name, inputs: [input], mode, scale: to.scale, alignCorners });
  }

  concat(name: string, inputs: string[], axis = 1): string {
    return this.push({ kind: 'concat', name, inputs, axis });
  }

  /** `weightName` names the fusion weights when they are not `<name>.weight` (effdet: `combine.edge_weights`). */
  weightedSum(name: string, inputs: string[], normalization: 'fast' | 'softmax' = 'fast', epsilon = 1e-4, weightName = `${name}.weight`): string {
    const weight = this.param(weightName, [inputs.length], { kind: 'constant', value: 1 });
    return this.push({ kind: 'weightedSum', name, inputs, normalization, epsilon, params: { weight } });
  }

  /** The finished graph, validated. */
  build(outputs: string[], endpoints: Endpoint[] = [], metadata: Graph['metadata'] = {}): Graph {
    const graph: Graph = {
      format: GRAPH_FORMAT,
      name: this.name,
      inputs: this.inputs,
      nodes: this.nodes,
      outputs,
      endpoints,
      parameters: this.parameters,
      metadata,
    };
    validateGraph(graph);
    return graph;
  }
}
