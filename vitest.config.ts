import { defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"

// The workspace packages' `exports` point at dist/ (what ships) except under this condition, which points at their
// sources: tests run the sources without a build. Processes the tests start (`node --import tsx fixture.ts`) inherit
// it through NODE_OPTIONS.
const sourceCondition = "@ouroboros/source"
// Vitest's own defaults: Vite's server conditions without `module` (which picks bundler-only builds, such as
// @opentelemetry/api's extension-less ESM, that Node cannot load).
const conditions = [sourceCondition, ...defaultServerConditions.filter((condition) => condition !== "module")]
if (!(process.env.NODE_OPTIONS ?? "").includes(`--conditions=${sourceCondition}`)) {
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --conditions=${sourceCondition}`.trim()
}

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: [
      "packages/*/test/**/*.test.ts",
      "apps/*/test/**/*.test.ts",
      "test/**/*.test.ts",
      "deploy/test/**/*.test.ts",
      "docs/test/**/*.test.ts",
      "packaging/test/**/*.test.ts",
      "examples/**/*.test.ts"
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
