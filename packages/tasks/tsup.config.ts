import { packageConfig } from '../../tsup.shared';

// `@effnet/tasks/training` is its own entry: the CLI reads the recipe's vocabulary without loading the whole package.
export default packageConfig({ index: 'src/index.ts', 'training/index': 'src/training/index.ts' });
