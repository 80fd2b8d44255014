/**
 * Reading Keras HDF5 weight files (h5wasm). Their names and layouts are converted by core's Keras table
 * (core/src/weights/keras.ts, `fromKeras`).
 */
import { float32Tensor, type TensorMap, TensorFileError } from '@effnet/core';

type H5Module = typeof import('h5wasm/node');
let h5Promise: Promise<H5Module['default']> | undefined;

async function h5wasm(): Promise<H5Module['default']> {
  h5Promise ??= import('h5wasm/node').then(async (m) => {
    const h5 = ((m as { default?: H5Module['default'] }).default ?? m) as H5Module['default'];
    await h5.ready;
    return h5;
  });
  return h5Promise;
}

function decodeNames(v: unknown): string[] | undefined {
  const dec = new TextDecoder();
  const one = (x: unknown) => (typeof x === 'string' ? x : x instanceof Uint8Array ? dec.decode(x).replace(/\0+$/, '') : undefined);
  if (Array.isArray(v)) {
    const names = v.map(one);
    return names.every((n): n is string => typeof n === 'string') ? names : undefined;
  }
  const s = one(v);
  return s === undefined ? undefined : [s];
}

/** HDF5's error stack in one phrase ("unable to synchronously open file"). */
function hdf5Reason(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const first = /#000: .*?\(\): (.*)/.exec(msg)?.[1];
  const minors = [...msg.matchAll(/minor: (.*)/g)].map((m) => m[1]!.trim());
  return [first, minors.at(-1)].filter(Boolean).join(': ') || msg.split('\n')[0]!;
}

/** Any numeric dataset value as float32 (Keras' Normalization keeps an int64 `count`). */
function asFloat32(value: unknown): Float32Array | undefined {
  if (value instanceof Float32Array) return value;
  if (typeof value === 'number') return Float32Array.of(value);
  if (typeof value === 'bigint') return Float32Array.of(Number(value));
  if (value instanceof BigInt64Array || value instanceof BigUint64Array) return Float32Array.from(value, (v) => Number(v));
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Float32Array.from(value as unknown as ArrayLike<number>);
  return undefined;
}

/**
 * Reads a Keras HDF5 weights file (`model.save_weights('w.h5')` or `model.save('m.h5')`, Keras 2 layout) into
 * tensors keyed `<layer>/<var>` in Keras layouts, as float32. HDF5's own diagnostics are turned into the error
 * instead of being printed.
 */
export async function readKerasH5(path: string): Promise<TensorMap> {
  const h5 = await h5wasm();
  const module = (await h5.ready) as unknown as { activate_throwing_error_handler?: () => number; deactivate_throwing_error_handler?: () => number };
  module.activate_throwing_error_handler?.();
  let f: InstanceType<typeof h5.File> | undefined;
  try {
    try {
      f = new h5.File(path, 'r');
    } catch (e) {
      throw new TensorFileError(path, `is not a readable HDF5 file (${hdf5Reason(e)}); Keras weights are read from .h5 files saved by Keras 2`);
    }
    const rootKeys = f.keys();
    const root = rootKeys.includes('model_weights') ? f.get('model_weights') : f;
    if (!(root instanceof h5.Group)) throw new TensorFileError(path, '"model_weights" is not a group');
    if (!root.attrs.layer_names && rootKeys.includes('layers') && !rootKeys.includes('model_weights'))
      throw new TensorFileError(path, "looks like a Keras 3 .weights.h5 file (layers/<name>/vars/<i>), which is not supported; save it in Keras 2's h5 layout (model.save_weights('w.h5') with tf.keras / keras 2)");
    const layerNames = decodeNames(root.attrs.layer_names?.value) ?? root.keys();
    const tensors: TensorMap = new Map();
    for (const layer of layerNames) {
      const g = root.get(layer);
      if (!(g instanceof h5.Group)) continue;
      let names = decodeNames(g.attrs.weight_names?.value);
      if (!names) {
        names = [];
        const walk = (grp: InstanceType<typeof h5.Group>, prefix: string) => {
          for (const k of grp.keys()) {
            const c = grp.get(k);
            if (c instanceof h5.Dataset) names!.push(prefix + k);
            else if (c instanceof h5.Group) walk(c, `${prefix}${k}/`);
          }
        };
        walk(g, '');
      }
      for (const wn of names) {
        const ds = g.get(wn);
        if (!(ds instanceof h5.Dataset)) throw new TensorFileError(path, `layer "${layer}" lists weight "${wn}", which is not a dataset`);
        const data = asFloat32(ds.value);
        if (!data) throw new TensorFileError(path, `weight "${layer}/${wn}" has dtype ${JSON.stringify(ds.dtype)}, which is not numeric`);
        const v = wn.slice(wn.lastIndexOf('/') + 1).replace(/:\d+$/, '');
        tensors.set(`${layer}/${v}`, float32Tensor([...(ds.shape ?? [])], data));
      }
    }
    return tensors;
  } catch (e) {
    if (e instanceof TensorFileError) throw e;
    throw new TensorFileError(path, `cannot be read as Keras weights (${hdf5Reason(e)})`);
  } finally {
    f?.close();
    module.deactivate_throwing_error_handler?.();
  }
}
