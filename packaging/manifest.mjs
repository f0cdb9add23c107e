// The publishable packages' manifests, derived from their sources: the `exports` map (one entry per public module,
// `internal/` never), the `files`, the peer dependencies (effect and @effect/*) and which of the declared
// dependencies the sources import. `node packaging/manifest.mjs --write` rewrites the package.json files;
// packaging/test/manifest.test.ts fails when a package.json differs from what this computes.
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

export const root = join(dirname(fileURLToPath(import.meta.url)), "..")

/** The export condition under which the workspace (tsc, vitest, esbuild, tsx) resolves a package to its sources. */
export const sourceCondition = "@ouroboros/source"

/**
 * The supported ranges of the peer dependencies; the consumer test installs the lowest and the highest. effect's
 * lowest is 4.1.0, except for the packages that need @effect/sql-pg or @effect/platform-node, directly or through
 * another package ({@link effectWithSqlPg}): sql-pg's first 4.1 release is 4.1.5, which asks for effect ^4.1.5, and
 * platform-node 4.1.0 installs platform-node-shared ^4.1.0, that is 4.1.5, which asks the same.
 */
export const peerRanges = {
  effect: "~4.1.0",
  "@effect/platform-node": "~4.1.5",
  "@effect/opentelemetry": "~4.1.0",
  "@effect/sql-pg": "~4.1.5"
}
export const effectWithSqlPg = "~4.1.5"

/**
 * Dependencies a package needs without importing them: the optional peers of a peer that its modules load.
 * `@effect/opentelemetry/NodeSdk` (correlation's Tracing) imports these at load time.
 */
export const loadedByPeers = {
  "@ouroboros/correlation": {
    "@opentelemetry/api": "^1.9.1",
    "@opentelemetry/resources": "^2.12.1",
    "@opentelemetry/sdk-logs": "^0.223.1",
    "@opentelemetry/sdk-metrics": "^2.12.1",
    "@opentelemetry/sdk-trace-node": "^2.12.0",
    "@opentelemetry/semantic-conventions": "^1.45.0"
  }
}

/** Every folder under packages/ is publishable; apps/ stay private. */
export const packageDirs = () =>
  readdirSync(join(root, "packages"), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => join(root, "packages", entry.name))
    .sort()

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)]
  )

/** The public modules of a package: every `src/**\/*.ts` outside an `internal` folder, as `Name` or `Dir/Name`. */
export const publicModules = (dir) =>
  walk(join(dir, "src"))
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
    .map((file) => relative(join(dir, "src"), file).replaceAll("\\", "/").slice(0, -3))
    .filter((module) => !module.split("/").includes("internal"))
    .sort((a, b) => (a === "index" ? -1 : b === "index" ? 1 : a.localeCompare(b)))

export const exportsMap = (dir) => {
  const map = { "./package.json": "./package.json" }
  for (const module of publicModules(dir)) {
    map[module === "index" ? "." : `./${module}`] = {
      [sourceCondition]: `./src/${module}.ts`,
      types: `./dist/${module}.d.ts`,
      import: `./dist/${module}.js`
    }
  }
  return map
}

const ts = createRequire(import.meta.url)("typescript")

/** The bare package names imported by the files (type-only and dynamic imports included). */
export const importedPackages = (files) => {
  const names = new Set()
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true)
    for (const { fileName: specifier } of importedFiles) {
      if (specifier.startsWith(".") || specifier.startsWith("node:")) continue
      const parts = specifier.split("/")
      names.add(specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0])
    }
  }
  return names
}

const dirOf = (name) =>
  packageDirs().find((dir) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).name === name)

/** Whether the package's sources, or those of the `@ouroboros/*` packages it imports, import a peer that needs
 * effect 4.1.5 (@effect/sql-pg, @effect/platform-node). */
const needsSqlPg = (dir, seen = new Set()) => {
  if (seen.has(dir)) return false
  seen.add(dir)
  const used = importedPackages(walk(join(dir, "src")).filter((file) => /\.(ts|mjs)$/.test(file)))
  if (used.has("@effect/sql-pg") || used.has("@effect/platform-node")) return true
  return [...used].some((name) => {
    if (!name.startsWith("@ouroboros/")) return false
    const other = dirOf(name)
    return other !== undefined && other !== dir && needsSqlPg(other, seen)
  })
}

const isPeer = (name) => name === "effect" || name.startsWith("@effect/")

const sorted = (object) => Object.fromEntries(Object.entries(object).sort(([a], [b]) => a.localeCompare(b)))

/** The manifest of a package as it should be, from its current package.json and its sources. */
export const manifest = (dir) => {
  const current = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))
  const allDeclared = { ...current.devDependencies, ...current.dependencies, ...current.peerDependencies }
  const rootManifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))
  const used = importedPackages(walk(join(dir, "src")).filter((file) => /\.(ts|mjs)$/.test(file)))
  used.delete(current.name)
  const dependencies = {}
  const peerDependencies = {}
  const devDependencies = { ...current.devDependencies }
  for (const name of used) {
    if (isPeer(name)) {
      peerDependencies[name] = peerRanges[name] ?? allDeclared[name]
      // The workspace develops against one version: the root's (effect ~4.1.5), whatever the peer range admits.
      devDependencies[name] = rootManifest.dependencies?.[name] ?? rootManifest.devDependencies?.[name] ?? "~4.1.5"
    } else if (name.startsWith("@ouroboros/")) {
      dependencies[name] = "^0.1.0"
      delete devDependencies[name]
    } else if (current.peerDependencies?.[name] !== undefined) {
      peerDependencies[name] = current.peerDependencies[name]
    } else {
      const range = allDeclared[name]
      if (range === undefined) throw new Error(`${current.name}: imports ${name}, which it does not declare`)
      dependencies[name] = range
      delete devDependencies[name]
    }
  }
  if (peerDependencies.effect !== undefined && needsSqlPg(dir)) peerDependencies.effect = effectWithSqlPg
  for (const [name, range] of Object.entries(loadedByPeers[current.name] ?? {})) {
    dependencies[name] = range
    delete devDependencies[name]
  }
  // What the tests, benchmarks and examples import and the package does not depend on is a dev dependency.
  const devFiles = ["test", "bench", "examples"].flatMap((sub) => {
    try {
      return walk(join(dir, sub)).filter((file) => /\.(ts|tsx|mjs)$/.test(file))
    } catch {
      return []
    }
  })
  for (const name of importedPackages(devFiles)) {
    if (name === current.name || name in dependencies || name in devDependencies) continue
    if (name in peerDependencies) continue
    const range = name.startsWith("@ouroboros/")
      ? "^0.1.0"
      : allDeclared[name] ?? rootManifest.dependencies?.[name] ?? rootManifest.devDependencies?.[name]
    if (range === undefined) throw new Error(`${current.name}: its tests import ${name}, declared nowhere`)
    devDependencies[name] = range
  }
  // Declared for development only when a test, bench or example needs it; kept as the owners wrote them.
  const {
    private: _private,
    exports: _exports,
    files: _files,
    dependencies: _d,
    peerDependencies: _p,
    devDependencies: _dd,
    peerDependenciesMeta: _m,
    sideEffects: _s,
    ...rest
  } = current
  const result = {
    name: current.name,
    version: current.version,
    type: "module",
    description: current.description,
    license: current.license ?? "MIT",
    ...rest,
    sideEffects: false,
    exports: exportsMap(dir),
    files: ["dist", "src", "README.md"],
    dependencies: sorted(dependencies),
    peerDependencies: sorted(peerDependencies),
    devDependencies: sorted(devDependencies)
  }
  if (current.peerDependenciesMeta !== undefined) {
    const meta = Object.fromEntries(
      Object.entries(current.peerDependenciesMeta).filter(([name]) => name in peerDependencies)
    )
    if (Object.keys(meta).length > 0) result.peerDependenciesMeta = meta
  }
  for (const key of ["dependencies", "peerDependencies", "devDependencies"]) {
    if (Object.keys(result[key]).length === 0) delete result[key]
  }
  return result
}

/** The package's build configuration: sources to `dist/` (ESM, declarations, both maps), against its dependencies'
 * declarations in their `dist/` (so it is checked as a consumer will see it). */
export const buildConfig = (dir) => {
  const { dependencies = {} } = manifest(dir)
  return {
    extends: "../../tsconfig.base.json",
    compilerOptions: {
      rootDir: "src",
      outDir: "dist",
      tsBuildInfoFile: "build/dist.tsbuildinfo",
      emitDeclarationOnly: false,
      declarationMap: true,
      sourceMap: true,
      customConditions: []
    },
    include: ["src"],
    references: Object.keys(dependencies)
      .filter((name) => name.startsWith("@ouroboros/"))
      .map((name) => ({ path: `../${name.slice("@ouroboros/".length)}/tsconfig.build.json` }))
  }
}

export const render = (object) => JSON.stringify(object, null, 2) + "\n"

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes("--write")) {
  for (const dir of packageDirs()) {
    writeFileSync(join(dir, "package.json"), render(manifest(dir)))
    writeFileSync(join(dir, "tsconfig.build.json"), render(buildConfig(dir)))
  }
}
