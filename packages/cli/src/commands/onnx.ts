import { basename, dirname, join } from 'node:path';
import { compileToOnnx } from '@effnet/backend-onnx';
import { analyzeGraph, writeFileAtomic } from '@effnet/core';
import { loadModel } from '../model-source.js';

export interface ExportOptions {
  variant: string;
  weights?: string;
  weightsFormat?: string;
  /** For a .pth checkpoint: the entry that holds the weights. */
  weightsKey?: string;
  output: string;
  opset?: number;
  fp16: boolean;
  fold: boolean;
  resolution?: number;
  dynamic: boolean;
}

/** `effnet export`: a variant (and weights) to an ONNX file. Returns lines for the user. */
export async function exportCommand(o: ExportOptions): Promise<string[]> {
  const m = await loadModel({ variant: o.variant, weights: o.weights, weightsFormat: o.weightsFormat, weightsKey: o.weightsKey, inputResolution: o.dynamic ? null : (o.resolution ?? undefined) });
  const compiled = compileToOnnx(m.graph, m.weights, {
    opset: o.opset,
    fp16: o.fp16,
    foldBatchNorm: o.fold,
    externalDataLocation: `${basename(o.output)}.data`,
    metadata: { 'effnet.weights': m.random ? 'random initialisation' : (m.pretrained ?? basename(m.weightsFile ?? o.weights!)), 'effnet.weights_format': m.pretrained ? 'pretrained' : (o.weightsFormat ?? 'effnet') },
  });
  if (compiled.externalData) await writeFileAtomic(join(dirname(o.output), compiled.externalData.location), compiled.externalData.bytes);
  await writeFileAtomic(o.output, compiled.model);
  const input = m.graph.inputs[0]!;
  const lines = [
    `wrote ${o.output} (${(compiled.model.length / 1e6).toFixed(1)} MB${compiled.externalData ? ` + ${compiled.externalData.location}` : ''}), opset ${compiled.opset}${o.fp16 ? ', fp16' : ''}`,
    `input "${compiled.inputName}" [batch, ${input.channels}, ${input.height ?? 'height'}, ${input.width ?? 'width'}] float32 NCHW; output ${compiled.outputNames.map((n) => `"${n}"`).join(', ')}`,
  ];
  if (!o.dynamic) lines.push(`${analyzeGraph(m.graph).params.toLocaleString('en-US')} params`);
  if (m.random) lines.unshift('note: no --weights given, so the model has a random initialisation (for architecture work, not predictions)');
  if (m.weightsDescription) lines.unshift(`read ${o.weights}: ${m.weightsDescription}`);
  return lines;
}
