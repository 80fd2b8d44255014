import { EffnetError } from '@effnet/core';

/** Labels a metric cannot be computed from. Names the argument, the position and the value at fault. */
export class MetricsInputError extends EffnetError {
  override name = 'MetricsInputError';
  constructor(
    readonly argument: string,
    readonly reason: string,
  ) {
    super(`${argument}: ${reason}`);
  }
}
