/** Levenshtein distance: how many single-character edits turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}

/**
 * Known names close enough to `word` to be what was meant (a typo), nearest first, at most `max`. "Close" is at
 * most max(2, |word| * ratio) edits.
 */
export function closestNames(word: string, known: Iterable<string>, o: { max?: number; ratio?: number } = {}): string[] {
  const limit = Math.max(2, Math.floor(word.length * (o.ratio ?? 1 / 3)));
  const scored: { name: string; d: number }[] = [];
  for (const name of known) {
    const d = editDistance(word, name);
    if (d <= limit) scored.push({ name, d });
  }
  return scored.sort((a, b) => a.d - b.d || a.name.localeCompare(b.name)).slice(0, o.max ?? 5).map((s) => s.name);
}
