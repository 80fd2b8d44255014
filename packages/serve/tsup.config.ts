import { packageConfig } from '../../tsup.shared';

// `@effnet/serve/defaults` is its own entry: the CLI declares `effnet serve`'s options without loading the server.
export default packageConfig({ index: 'src/index.ts', defaults: 'src/defaults.ts' });
