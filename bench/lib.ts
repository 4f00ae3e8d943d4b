/** Shapes and helpers shared by the benchmark scenarios (no imports: run.ts imports the scenarios). */
export interface ScenarioResult {
  value: number;
  unit: string;
  baseline: { name: string; value: number };
  /** The ratio this scenario should reach (value / baseline), or null when it has no target. */
  target: number | null;
  p50_ms?: number;
  p99_ms?: number;
  notes?: string;
}

export interface Scenario {
  name: string;
  description: string;
  run(): Promise<ScenarioResult>;
}

/** ops per second of `ops` done in `ms`. */
export const rate = (ops: number, ms: number) => Number(((ops / ms) * 1000).toFixed(1));

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return Number(sorted[i]!.toFixed(2));
}

/** Runs `total` calls of `fn` with `concurrency` in flight; returns elapsed ms. */
export async function pool(total: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await fn(next++);
    }),
  );
  return performance.now() - t0;
}


export const BENCH_BASE = "https://hub.example.com";
export const BENCH_ADMIN = "bench-admin-key-0001";
/** The hub secret of every bench hub (HUB_SECRET takes 32 characters or more). */
export const BENCH_SECRET = "bench-hub-secret-0123456789abcdef";

/** The environment every benchmark hub shares: files in `dir`, its own queue prefix, quiet logs, no timed checkpoints. */
export function benchEnv(dir: string, prefix: string): Record<string, string> {
  return {
    DATABASE_PATH: `${dir}/hub.db`,
    LEDGER_KEY_PATH: `${dir}/key.json`,
    HUB_SECRET: BENCH_SECRET,
    REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
    QUEUE_PREFIX: prefix,
    HUB_ADMIN_KEY: BENCH_ADMIN,
    LOG_LEVEL: "silent",
    PUBLIC_BASE_URL: BENCH_BASE,
    CHECKPOINT_INTERVAL_SECONDS: "0",
  };
}
