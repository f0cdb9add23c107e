// Builds every publishable package to its dist/: `tsc -b` over the packages' tsconfig.build.json (ESM JavaScript,
// declarations, declaration maps and source maps), then the non-TypeScript modules of src/ (the PGlite worker)
// copied next to the compiled ones. `npm run build:packages`.
import { spawnSync } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, relative } from "node:path"
import { packageDirs } from "./manifest.mjs"

// tsc -b trusts a project's build info: a dist/ deleted since is rebuilt only when its build info goes too.
for (const dir of packageDirs()) {
  if (!existsSync(join(dir, "dist", "index.js"))) rmSync(join(dir, "build", "dist.tsbuildinfo"), { force: true })
}
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
const configs = packageDirs().map((dir) => join(dir, "tsconfig.build.json"))
const result = spawnSync(process.execPath, [tsc, "-b", ...configs, ...process.argv.slice(2)], { stdio: "inherit" })
if (result.status !== 0) process.exit(result.status ?? 1)

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)]
  )
for (const dir of packageDirs()) {
  for (const file of walk(join(dir, "src")).filter((file) => file.endsWith(".mjs"))) {
    const target = join(dir, "dist", relative(join(dir, "src"), file))
    mkdirSync(dirname(target), { recursive: true })
    copyFileSync(file, target)
  }
}
