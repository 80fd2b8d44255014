// The README's search example scores candidates with "your own function": here, fewer MACs score higher.
import { analyzeGraph as __analyze, buildEfficientNet as __build } from '@effnet/core';
const myValidationAccuracy = async (spec: Parameters<typeof __build>[0], resolution: number) => -__analyze(__build(spec), { height: resolution, width: resolution }).macs;
