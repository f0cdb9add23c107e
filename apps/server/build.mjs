// Bundles the server into dist/ so that `npm start` loads one file instead of hundreds of modules.
import { build } from "esbuild"
import { copyFile, mkdir } from "node:fs/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, "dist")
await mkdir(out, { recursive: true })
await build({
  entryPoints: { main: join(here, "src/main.ts"), cli: join(here, "src/cli.ts") },
  bundle: true,
  // The workspace packages from their TypeScript sources (their `exports` point at dist/ otherwise).
  conditions: ["@ouroboros/source"],
  platform: "node",
  target: "node22",
  format: "esm",
  outdir: out,
  outExtension: { ".js": ".js" },
  // main.ts loads Program.js with a dynamic import: split, it becomes its own chunk and dist/main.js stays tiny, so
  // the embedded database starts before the rest of the server is read (see @ouroboros/sql/Early).
  splitting: true,
  sourcemap: true,
  logLevel: "warning",
  // Kept external: native or self-locating packages that read files next to their own modules.
  external: ["@electric-sql/pglite", "@electric-sql/pglite-socket", "pg-native"],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
})
await copyFile(join(here, "../../packages/sql/src/pglite-worker.mjs"), join(out, "pglite-worker.mjs")).catch(() => {})

// Warm the template of a fresh embedded database, so the first `npm start` and every test that opens a new data
// directory skip PostgreSQL's initdb (5 to 13 s here). Skipped when the template exists or SKIP_PGLITE_TEMPLATE=1.
if (process.env.SKIP_PGLITE_TEMPLATE !== "1") {
  const { spawnSync } = await import("node:child_process")
  const result = spawnSync(process.execPath, [join(here, "warm-pglite.mjs")], { stdio: "inherit" })
  if (result.status !== 0) console.warn("warning: could not prepare the embedded database template")
}
