/**
 * TensorFlow.js core with its gradients registered (the umbrella @tensorflow/tfjs package does this; we depend on
 * tfjs-core alone so that tfjs-node, wasm and cpu can share one core instance).
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients';
// tfjs-core's own ops call tensor methods (x.cast, ...) that only exist once the chained ops are registered.
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
import * as tf from '@tensorflow/tfjs-core';

export { tf };
