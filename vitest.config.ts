import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", "bench/**"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests open real SQLite files and real Redis connections; forks keep native handles apart.
    pool: "forks",
    allowOnly: false,
  },
});
