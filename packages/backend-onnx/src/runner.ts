import { type Backend, EffnetError, checkGraphInput, readFileBytes, type Graph, type LoadOptions, type OnnxModelBytes, type Runner, type Tensor, type TensorMap, type TrainingBackend, registerBackend } from '@effnet/core';
import type * as Ort from 'onnxruntime-node';
import { compileToOnnx } from './compile.js';
import { type CompiledCacheEntry, CompiledModelCache, compiledCacheKey, onnxFileCacheKey, optimizedModelName } from './model-cache.js';
import { type OnnxLoadOptions, openSession, ort } from './ort.js';
import { OnnxTrainSession, type OnnxTrainerOptions } from './training/session.js';

/** A loaded ONNX model: one session, reused for every run; inputs checked before they reach the runtime. */
export class OnnxRunner implements Runner {
  constructor(
    private readonly session: Ort.InferenceSession,
    private readonly graph: Graph,
    readonly device: string,
    readonly notes: readonly string[],
    private readonly allowNonFinite = false,
    /** Bytes the session reads in place (a cached .ort model): they must live as long as it does. */
    private readonly sessionBytes?: Uint8Array,
  ) {}

  async run(input: Tensor): Promise<Record<string, Tensor>> {
    const x = checkGraphInput(this.graph, input, { allowNonFinite: this.allowNonFinite });
    const { Tensor: OrtTensor } = await ort();
    const feeds = { [this.graph.inputs[0]!.name]: new OrtTensor('float32', x.data, x.shape) };
    const results = await this.session.run(feeds);
    const out: Record<string, Tensor> = {};
    for (const name of this.graph.outputs) {
      const t = results[name]!;
      out[name] = { dtype: 'float32', shape: t.dims.map(Number), data: t.data as Float32Array };
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
    void this.sessionBytes;
  }
}

/** The ONNX Runtime backend: compiles the graph, then runs it on cpu, cuda or webgpu. */
export class OnnxBackend implements Backend, TrainingBackend {
  readonly name = 'onnx';

  async load(graph: Graph, weights: TensorMap, options: OnnxLoadOptions = {}): Promise<OnnxRunner> {
    const cache = compiledCacheFor(options);
    if (cache) return loadCached(cache, graph, weights, options);
    const compiled = compileToOnnx(graph, weights, options);
    const { session, device, notes } = await openSession(compiled.model, options, compiled.externalData);
    return new OnnxRunner(session, graph, device, notes, options.allowNonFinite);
  }

  /** An ONNX model compiled before (an exported .onnx file); `graph` is its network, for input checks and output names. */
  async loadOnnx(model: OnnxModelBytes, graph: Graph, options: LoadOptions = {}): Promise<OnnxRunner> {
    const o = options as OnnxLoadOptions;
    if (!model.bytes && !model.path) throw new EffnetError('loadOnnx: give the model as bytes or as a path');
    const cache = model.externalData ? undefined : compiledCacheFor(o);
    const { env } = await ort();
    const bytes = async () => model.bytes ?? (await readFileBytes(model.path!));
    let opened: Opened;
    if (cache) {
      const entry = cache.entry(await onnxFileCacheKey(model, `onnxruntime ${env.versions?.common ?? 'unknown'}`));
      const cacheNotes: string[] = [];
      opened = (await openCachedOptimized(cache, entry, o, cacheNotes)) ?? (await optimizeAndStore(cache, entry, await bytes(), o, cacheNotes));
    } else opened = await openSession(await bytes(), o, model.externalData);
    const { session, device, notes, sessionBytes } = opened;
    const missing = graph.outputs.filter((o) => !session.outputNames.includes(o));
    if (missing.length || session.inputNames[0] !== graph.inputs[0]!.name) {
      await session.release();
      throw new EffnetError(
        `${model.path ?? 'the ONNX model'}: its input and outputs (${session.inputNames.join(', ')} -> ${session.outputNames.join(', ')}) are not those of the network its metadata describes (${graph.inputs[0]!.name} -> ${graph.outputs.join(', ')}); export it again with effnet export`,
      );
    }
    return new OnnxRunner(session, graph, device, notes, options.allowNonFinite, sessionBytes);
  }

  /** Trains on ONNX Runtime: the graph differentiated into one training graph per batch shape (see OnnxTrainSession). */
  async createTrainer(graph: Graph, weights: TensorMap, options: OnnxTrainerOptions): Promise<OnnxTrainSession> {
    return OnnxTrainSession.create(graph, weights, options);
  }
}

/** The compiled-model cache to use, if any: the option, else EFFNET_COMPILE_CACHE=1; never with an `extend` hook (a function). */
function compiledCacheFor(o: OnnxLoadOptions): CompiledModelCache | undefined {
  const want = o.compiledCache ?? process.env.EFFNET_COMPILE_CACHE === '1';
  if (!want || o.extend) return undefined;
  return CompiledModelCache.at(typeof want === 'string' ? want : undefined);
}

/** Runs a cache operation; a failure (a read-only or full disk) becomes a note, and the model loads anyway. */
function cacheAttempt(cache: CompiledModelCache, notes: string[]) {
  return async <T>(what: string, f: () => Promise<T>): Promise<T | undefined> =>
    f().catch((e: Error) => {
      notes.push(`could not ${what} in the compiled-model cache ${cache.root}: ${e.message}`);
      return undefined;
    });
}

/**
 * Loads through the cache. On the CPU provider, ONNX Runtime's optimized model is looked for first: with it, nothing
 * is compiled or read but that file. Otherwise the compiled model is read back (or compiled and stored) and, on the
 * CPU provider, optimized once and stored. A cache that cannot be written is noted and the model runs anyway.
 */
async function loadCached(cache: CompiledModelCache, graph: Graph, weights: TensorMap, options: OnnxLoadOptions): Promise<OnnxRunner> {
  const { env } = await ort();
  const { device: _d, threads: _t, compiledCache: _c, ...compileOptions } = options;
  const entry = cache.entry(compiledCacheKey(graph, weights, compileOptions, `onnxruntime ${env.versions?.common ?? 'unknown'}`));
  const notes: string[] = [];
  const runner = (o: Opened) => new OnnxRunner(o.session, graph, o.device, o.notes, options.allowNonFinite, o.sessionBytes);
  const hit = await openCachedOptimized(cache, entry, options, notes);
  if (hit) return runner(hit);
  const safely = cacheAttempt(cache, notes);
  let model = await safely('read the compiled model', () => cache.read(entry, 'model.onnx'));
  if (model) notes.push(`compiled model from the cache (${entry.dir})`);
  else {
    const compiled = compileToOnnx(graph, weights, options);
    if (compiled.externalData) {
      // Models over 2 GB keep their weights outside the protobuf: not cached.
      return runner(await openSession(compiled.model, options, compiled.externalData));
    }
    model = compiled.model;
    if (await safely('write the compiled model', () => cache.write(entry, 'model.onnx', compiled.model).then(() => true))) notes.push(`compiled and cached (${entry.dir})`);
  }
  return runner(await optimizeAndStore(cache, entry, model, options, notes));
}

/** An open session, and the bytes it reads in place (which must outlive it) when it was opened from the cache. */
type Opened = Awaited<ReturnType<typeof openSession>> & { sessionBytes?: Uint8Array };

/**
 * On the CPU provider, a session on ONNX Runtime's optimized model from the cache, if it is there: kept in ORT's own
 * .ort format, which the session reads in place (no parse, no copy of the weights), with graph optimizations off.
 */
async function openCachedOptimized(cache: CompiledModelCache, entry: CompiledCacheEntry, options: OnnxLoadOptions, notes: string[]): Promise<Opened | undefined> {
  if ((options.device ?? 'cpu') !== 'cpu') return undefined;
  const name = optimizedModelName('cpu');
  const optimized = await cacheAttempt(cache, notes)('read the optimized model', () => cache.read(entry, name));
  if (!optimized) return undefined;
  try {
    const s = await openSession(optimized, options, undefined, { graphOptimizationLevel: 'disabled', extra: { session: { use_ort_model_bytes_directly: '1', use_ort_model_bytes_for_initializers: '1' } } });
    return { ...s, notes: [...notes, 'ONNX Runtime optimized model from the cache', ...s.notes], sessionBytes: optimized };
  } catch (e) {
    // Its hash matched, so ONNX Runtime itself refuses it (a file written by another build of it): build it again.
    notes.push(`the cached optimized model did not open (${(e as Error).message}); optimized again`);
    await cacheAttempt(cache, notes)('remove the optimized model', () => cache.remove(entry, name));
    return undefined;
  }
}

/** A session on a compiled model; on the CPU provider, ONNX Runtime's optimized model is stored in the cache (as .ort). */
async function optimizeAndStore(cache: CompiledModelCache, entry: CompiledCacheEntry, model: Uint8Array, options: OnnxLoadOptions, notes: string[]): Promise<Opened> {
  if ((options.device ?? 'cpu') !== 'cpu') {
    const s = await openSession(model, options);
    return { ...s, notes: [...notes, ...s.notes] };
  }
  const safely = cacheAttempt(cache, notes);
  const optName = optimizedModelName('cpu');
  const tmp = await safely('write the optimized model', () => cache.tempPath(entry, optName));
  const s = await openSession(model, options, undefined, tmp ? { optimizedModelFilePath: tmp, extra: { session: { save_model_format: 'ORT' } } } : {});
  if (tmp) await safely('write the optimized model', () => cache.adopt(entry, tmp, optName));
  return { ...s, notes: [...notes, ...s.notes] };
}

registerBackend('onnx', async () => new OnnxBackend());
