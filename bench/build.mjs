// Bundles the benchmarks into bench/dist so that our code runs as the server runs it: compiled by esbuild without
// `keepNames`. Under tsx every named function expression is wrapped in `__name(...)` (an Object.defineProperty per
// closure created), which costs our TypeScript hot paths but not the peers' plain JavaScript. Dependencies stay
// external (loaded from node_modules as published); the workspace packages (TypeScript sources) are bundled.
import { build } from "esbuild"
import { copyFile, readdir } from "node:fs/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const entries = (await readdir(here)).filter((name) => name.endsWith(".ts") && !name.startsWith("_"))
await build({
  entryPoints: [
    ...entries.map((name) => join(here, name)),
    join(here, "servers/bare-httpapi.ts"),
    join(here, "servers/stack.ts")
  ],
  outbase: here,
  outdir: join(here, "dist"),
  bundle: true,
  // The workspace packages from their TypeScript sources (their `exports` point at dist/ otherwise).
  conditions: ["@ouroboros/source"],
  splitting: true,
  platform: "node",
  target: "node22",
  format: "esm",
  sourcemap: true,
  logLevel: "warning",
  plugins: [{
    name: "external-dependencies",
    setup(build) {
      build.onResolve(
        { filter: /^[^./]/ },
        (args) => args.path.startsWith("@ouroboros/") ? undefined : { path: args.path, external: true }
      )
    }
  }]
})
// The embedded database's worker is loaded from next to the bundle, as in the server's build.
await copyFile(join(here, "../packages/sql/src/pglite-worker.mjs"), join(here, "dist/pglite-worker.mjs"))
