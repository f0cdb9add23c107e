// The production dependencies of the server bundle: what `apps/server/dist` still imports at run time, pinned to the
// versions and integrity hashes of the repository's package-lock.json.
//
//   node deploy/runtime-deps.mjs <dist-dir> <out-dir>      (run from the repository root; needs esbuild)
//
// The bundle is self-contained except for the packages build.mjs keeps external (PGlite and its socket server, which
// locate their WebAssembly and data files next to their own modules). Rather than repeating that list, this reads the
// bundle itself:
//
// - every `import` / `import()` of a bare package name in the bundle's files (esbuild parses them and reports each
//   import it leaves external) is a required dependency; it must be in the lock file;
// - every `require("name")` the bundle kept (`__require`, CommonJS code that esbuild could not resolve at build time,
//   e.g. ws's optional `bufferutil`) is optional: installed when the lock file has it, otherwise reported and
//   skipped, since it was not installed for the build or the tests either and the code guards it with try/catch.
//
// It writes <out-dir>/package.json (the required packages at their locked versions) and <out-dir>/package-lock.json
// (the lock file's entries for them and everything they depend on, peers included, unchanged: same versions, same
// integrity), so that `npm ci --omit=dev` in <out-dir> installs exactly those, verified against the repository's
// hashes. The Dockerfile runs it in its build stage and `npm ci` in its `deps` stage; deploy/test/image.test.ts runs
// the same two steps outside Docker.
import { build } from "esbuild"
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { isBuiltin } from "node:module"
import { join, resolve } from "node:path"
import { pathToFileURL } from "node:url"

/** The package name of a bare specifier (`@scope/name/sub/path` → `@scope/name`), or undefined for a relative one. */
export const packageName = (specifier) => {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("data:")) return undefined
  const parts = specifier.split("/")
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]
}

const isNodeBuiltin = (specifier) => isBuiltin(specifier) || specifier.startsWith("node:")

/**
 * The external packages of the bundle's JavaScript files in `distDir`: `required` (static and dynamic imports) and
 * `optional` (literal `require` calls left in the bundle), each a sorted list of package names, node builtins left out.
 */
export const analyzeBundle = async (distDir) => {
  const files = readdirSync(distDir).filter((f) => /\.(m?js|cjs)$/.test(f)).sort()
  const required = new Set()
  const optional = new Set()
  const perFile = {}
  for (const file of files) {
    const path = join(distDir, file)
    const result = await build({
      absWorkingDir: resolve(distDir),
      entryPoints: [file],
      bundle: true,
      write: false,
      metafile: true,
      platform: "node",
      format: "esm",
      packages: "external",
      logLevel: "silent",
      outdir: "analysis" // nothing is written (write: false)
    })
    // Every import of the file: esbuild reports each external one with the specifier as written.
    const input = result.metafile.inputs[file]
    const imports = input.imports
      .filter((i) => i.external && !isNodeBuiltin(i.path))
      .map((i) => packageName(i.path))
      .filter((name) => name !== undefined)
    const text = readFileSync(path, "utf8")
    const requires = [...text.matchAll(/\b(?:__require|require)\(\s*["']([^"']+)["']\s*\)/g)]
      .map((m) => m[1])
      .filter((s) => !isNodeBuiltin(s))
      .map(packageName)
      .filter((name) => name !== undefined)
    perFile[file] = { imports: [...new Set(imports)].sort(), requires: [...new Set(requires)].sort() }
    for (const name of imports) required.add(name)
    for (const name of requires) optional.add(name)
  }
  for (const name of required) optional.delete(name)
  return { files, perFile, required: [...required].sort(), optional: [...optional].sort() }
}

// Where Node would find `name` from the package installed at `from` (a lock path like `node_modules/a`, or "").
const locate = (packages, from, name) => {
  let base = from
  for (;;) {
    const candidate = base === "" ? `node_modules/${name}` : `${base}/node_modules/${name}`
    if (packages[candidate] !== undefined) return candidate
    if (base === "") return undefined
    const cut = base.lastIndexOf("/node_modules/")
    base = cut < 0 ? "" : base.slice(0, cut)
  }
}

/**
 * The lock file's entries for `names` and everything they need (dependencies, optional dependencies, and peer
 * dependencies that are not marked optional, which npm installs too), keyed by their lock path.
 */
export const lockClosure = (lock, names) => {
  const packages = lock.packages
  const out = {}
  const missing = []
  const visit = (path) => {
    if (out[path] !== undefined) return
    const entry = packages[path]
    const { dev: _dev, devOptional: _devOptional, extraneous: _extraneous, ...kept } = entry
    out[path] = kept
    const optionalPeers = new Set(
      Object.entries(entry.peerDependenciesMeta ?? {}).filter(([, m]) => m?.optional).map(([n]) => n)
    )
    const needs = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}).filter((n) => !optionalPeers.has(n))
    ]
    for (const dep of needs) {
      const found = locate(packages, path, dep)
      if (found !== undefined) visit(found)
      else if (entry.dependencies?.[dep] !== undefined) missing.push(`${dep} (needed by ${path})`)
    }
  }
  for (const name of names) {
    const path = `node_modules/${name}`
    if (packages[path] === undefined) missing.push(name)
    else visit(path)
  }
  return { packages: Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b))), missing }
}

/** Writes package.json and package-lock.json for the runtime dependencies into `outDir`; returns what it decided. */
export const writeRuntimeManifest = async ({ distDir, lockFile, outDir }) => {
  const lock = JSON.parse(readFileSync(lockFile, "utf8"))
  const analysis = await analyzeBundle(distDir)
  const optionalLocked = analysis.optional.filter((n) => lock.packages[`node_modules/${n}`] !== undefined)
  const optionalSkipped = analysis.optional.filter((n) => lock.packages[`node_modules/${n}`] === undefined)
  const install = [...analysis.required, ...optionalLocked].sort()
  const closure = lockClosure(lock, install)
  if (closure.missing.length > 0) {
    throw new Error(`not in ${lockFile}: ${closure.missing.join(", ")} (the bundle imports it; add it to package.json)`)
  }
  const dependencies = Object.fromEntries(install.map((n) => [n, lock.packages[`node_modules/${n}`].version]))
  const manifest = { name: "ouroboros-runtime", version: "0.0.0", private: true, dependencies }
  const runtimeLock = {
    name: manifest.name,
    version: manifest.version,
    lockfileVersion: 3,
    requires: true,
    packages: { "": { name: manifest.name, version: manifest.version, dependencies }, ...closure.packages }
  }
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, "package.json"), JSON.stringify(manifest, null, 2) + "\n")
  writeFileSync(join(outDir, "package-lock.json"), JSON.stringify(runtimeLock, null, 2) + "\n")
  return { ...analysis, optionalSkipped, install, lockPaths: Object.keys(closure.packages) }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [distDir, outDir] = process.argv.slice(2)
  if (distDir === undefined || outDir === undefined) {
    console.error("usage: node deploy/runtime-deps.mjs <dist-dir> <out-dir>")
    process.exit(2)
  }
  const result = await writeRuntimeManifest({ distDir, lockFile: "package-lock.json", outDir })
  console.log(`runtime dependencies of ${distDir}: ${result.install.join(", ")}`)
  console.log(`  locked packages installed: ${result.lockPaths.length} (${result.lockPaths.join(", ")})`)
  if (result.optionalSkipped.length > 0) {
    console.log(`  optional requires not in the lock file, left out: ${result.optionalSkipped.join(", ")}`)
  }
}
