import { packageConfig } from '../../tsup.shared';

// `@effnet/tasks/training` is its own entry: the CLI reads the recipe's vocabulary without loading the whole package.
// `@effnet/tasks/bench` likewise: benchmark workers time raw sessions with it.
export default packageConfig({ index: 'src/index.ts', 'training/index': 'src/training/index.ts', 'bench/index': 'src/bench/timing.ts' });
