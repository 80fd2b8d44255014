/**
 * TensorFlow.js core with its gradients registered (the umbrella @tensorflow/tfjs package does this; we depend on
 * tfjs-core alone so that tfjs-node, wasm and cpu can share one core instance).
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import * as tf from '@tensorflow/tfjs-core';

export { tf };
