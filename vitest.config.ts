import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: [
      "packages/*/test/**/*.test.ts",
      "apps/*/test/**/*.test.ts",
      "test/**/*.test.ts",
      "deploy/test/**/*.test.ts",
      "docs/test/**/*.test.ts"
    ],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    coverage: {
      provider: "v8",
      include: ["packages/*/src/**/*.ts", "apps/*/src/**/*.ts"],
      exclude: ["**/index.ts", "apps/console/src/web/**"],
      reporter: ["text-summary", "json-summary"],
      thresholds: { lines: 80 }
    }
  }
})
