/**
 * TensorFlow.js core with every gradient and chained op registered. The umbrella @tensorflow/tfjs package does that
 * registration (tfjs-core's own register_all_gradients is ESM without file extensions, which Node cannot load), and
 * tfjs-node depends on the same umbrella, so all runtimes share one core instance.
 */
import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';

export { tf };
