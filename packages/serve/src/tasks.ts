/**
 * Task endpoints (`POST /v2/models/{name}/{task}`) as small pluggable handlers: each reads its body, sends rows
 * through the model's batcher (`model.infer`) and returns the JSON to answer with. A task without a handler yet is a
 * 501 that names it; a model of another task is a 404 that says what the model serves.
 */
import { inferShapes } from '@effnet/core';
import type { ModelWeights } from '@effnet/tasks';
import { NotFoundError, NotImplementedError } from './errors.js';
import type { ServedModel } from './model.js';
import { classifyHandler } from './tasks/classify.js';
import { detectHandler } from './tasks/detect.js';
import { segmentHandler } from './tasks/segment.js';

export const TASKS = ['classify', 'detect', 'segment'] as const;
export type TaskName = (typeof TASKS)[number];

export interface TaskRequest {
  model: ServedModel;
  body: Uint8Array;
  query: URLSearchParams;
  contentType: string | undefined;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export interface TaskHandler {
  task: TaskName;
  handle(r: TaskRequest): Promise<unknown>;
}

/** The handlers this server has, one per task. */
const HANDLERS: Partial<Record<TaskName, TaskHandler>> = { classify: classifyHandler, detect: detectHandler, segment: segmentHandler };

/** The task a loaded model serves: EfficientDets detect, segmenters segment, a graph with one [N, classes] output classifies. */
export function taskOf(m: ModelWeights): TaskName | undefined {
  if (m.detector) return 'detect';
  if (m.segmenter) return 'segment';
  const outputs = m.graph.outputs;
  if (outputs.length === 1 && inferShapes(m.graph).get(outputs[0]!)?.length === 2) return 'classify';
  return undefined;
}

/** The server metadata's extensions for the task endpoints it implements (effnet_classify, effnet_detect). */
export function taskExtensions(): string[] {
  return TASKS.filter((t) => HANDLERS[t]).map((t) => `effnet_${t}`);
}

export function isTask(s: string): s is TaskName {
  return (TASKS as readonly string[]).includes(s);
}

/** The handler for `task` on `model`, or the error that says why there is none. */
export function taskHandler(model: ServedModel, task: TaskName): TaskHandler {
  const handler = HANDLERS[task];
  if (!handler) throw new NotImplementedError(`the ${task} endpoint is not implemented in this effnet serve yet; POST /v2/models/${model.name}/infer returns the model's raw outputs`);
  if (model.task !== task)
    throw new NotFoundError(`model "${model.name}" is ${model.task ? `a ${model.task} model` : 'not a classifier, detector or segmenter'}, so it has no ${task} endpoint; it serves POST /v2/models/${model.name}/infer${model.task && HANDLERS[model.task] ? ` and /${model.task}` : ''}`);
  return handler;
}
