export { main, runCli } from './cli.js';
export { formatTable, humanCount } from './table.js';
export { modelInfo } from './commands/info.js';
export { variantSummaries } from './commands/variants.js';
