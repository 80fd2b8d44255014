/**
 * `@effnet/tasks/training`: the training loop and the recipe, which import nothing but core, so that the CLI can
 * declare its options from them without loading the rest of the tasks package.
 */
export * from './loop.js';
export * from './recipe.js';
