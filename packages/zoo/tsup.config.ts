import { packageConfig } from '../../tsup.shared';

// shims: import.meta.url in the CJS build too (the embedded models are found relative to the package).
export default packageConfig(['src/index.ts'], { shims: true });
