/** Rejects with `timeout after N ms` when `p` takes longer; clears its timer either way. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what = "operation"): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: timeout after ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
