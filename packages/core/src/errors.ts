/**
 * Typed errors. Each one says what was wrong, with which input, and what would fix it,
 * so a caller can act on it without reading our source.
 */
export class EffnetError extends Error {
  override name = 'EffnetError';
}

/** A variant name nobody registered. Lists the known names. */
export class UnknownVariantError extends EffnetError {
  override name = 'UnknownVariantError';
  constructor(
    readonly variant: string,
    readonly known: readonly string[],
  ) {
    super(`"${variant}" is not a known variant (known: ${known.join(', ')})`);
  }
}

/** A spec or option field with a value that cannot work. Names the field and the value. */
export class InvalidSpecError extends EffnetError {
  override name = 'InvalidSpecError';
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly expected: string,
  ) {
    super(`invalid ${field}: ${JSON.stringify(value)} (${expected})`);
  }
}

/** A block string that does not decode. Names the string and the token at fault. */
export class BlockStringError extends EffnetError {
  override name = 'BlockStringError';
  constructor(
    readonly blockString: string,
    readonly reason: string,
  ) {
    super(`cannot decode block string "${blockString}": ${reason}`);
  }
}

/** A malformed graph. Names the node (or "graph") and the field at fault. */
export class GraphValidationError extends EffnetError {
  override name = 'GraphValidationError';
  constructor(
    readonly node: string,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`graph node "${node}", field ${field}: ${reason}`);
  }
}

/** A tensor file (safetensors, npy) that cannot be read or written as asked. */
export class TensorFileError extends EffnetError {
  override name = 'TensorFileError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** Weights that do not fit a graph: every problem at once, by name. */
export class WeightMismatchError extends EffnetError {
  override name = 'WeightMismatchError';
  constructor(
    readonly missing: readonly string[],
    readonly unexpected: readonly string[],
    readonly misshaped: readonly { name: string; expected: readonly number[]; actual: readonly number[] }[],
    hint?: string,
  ) {
    // The lists stay whole on the error; the message shows the first few of each so that it stays readable.
    const some = (names: readonly string[]) => (names.length > 12 ? `${names.slice(0, 12).join(', ')}, ... and ${names.length - 12} more` : names.join(', '));
    const lines: string[] = [];
    if (missing.length) lines.push(`missing (${missing.length}): ${some(missing)}`);
    if (unexpected.length) lines.push(`unexpected (${unexpected.length}): ${some(unexpected)}`);
    for (const m of misshaped) lines.push(`mis-shaped: ${m.name} expected [${m.expected.join(', ')}] got [${m.actual.join(', ')}]`);
    if (hint) lines.push(hint);
    super(`weights do not fit the graph:\n  ${lines.join('\n  ')}`);
  }
}
