import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", "bench/**"],
    // Generous: a timeout only catches a hang, and CI shares this 2-core machine (speed lives in `npm run bench`).
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests open real SQLite files and real Redis connections; forks keep native handles apart.
    pool: "forks",
    allowOnly: false,
  },
});
