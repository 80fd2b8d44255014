/**
 * Runs `task(i)` for i = 0..count-1 with at most `concurrency` in flight, in index order of starting. With
 * `stop`, no new task starts once it returns true (the running ones finish). The one worker pool of the project:
 * image decoding, dataset encoding, file checks.
 */
export async function forEachConcurrent(count: number, concurrency: number, task: (i: number) => Promise<void>, stop?: () => boolean): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count && !stop?.()) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.max(0, Math.min(concurrency, count)) }, worker));
}
