/**
 * The packages as a third party gets them: every publishable package built (`packaging/build.mjs`) and packed with
 * `npm pack`, the tarballs installed into a scratch application outside the workspace with the lowest and the highest
 * `effect` that the peer ranges allow, `consumer/main.ts` compiled by plain `tsc --strict` with the configuration
 * `tsc --init` writes (no option of ours), and run by plain `node`.
 *
 * Slow (a build, a pack, an install per `effect` version): it runs under CI (`CI=true`), in `npm test`, or with
 * `OUROBOROS_PACKAGING=1`. The scratch application stays in the system's temporary folder between runs, so an install
 * reuses what the last one fetched.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { packageDirs, peerRanges } from "../manifest.mjs"

const root = fileURLToPath(new URL("../..", import.meta.url))
const enabled = process.env.CI === "true" || process.env.npm_lifecycle_event === "test" ||
  process.env.OUROBOROS_PACKAGING === "1"
const require = createRequire(import.meta.url)
const tsc = require.resolve("typescript/bin/tsc")
const npmCli = Path.join(Path.dirname(process.execPath), "../lib/node_modules/npm/bin/npm-cli.js")

/** The environment of a third party: without the workspace's source condition that vitest.config.ts adds. */
const outside: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => name !== "NODE_OPTIONS" && !name.startsWith("npm_"))
)

/** npm through the Node that runs the tests (Node 22 here), or the `npm` on PATH. */
const npm = (args: ReadonlyArray<string>, cwd: string): string => {
  const [command, prefix] = Fs.existsSync(npmCli) ? [process.execPath, [npmCli]] : ["npm", []]
  const result = spawnSync(command, [...prefix, ...args], {
    cwd,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    env: outside
  })
  assert.strictEqual(result.status, 0, `npm ${args.join(" ")}\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

/** The lowest and the highest published versions in a range. */
const bounds = (name: string, range: string, cwd: string): readonly [string, string] => {
  const versions = [JSON.parse(npm(["view", `${name}@${range}`, "version", "--json"], cwd))].flat() as Array<string>
  assert.isAtLeast(versions.length, 1, `${name}@${range} has published versions`)
  return [versions[0]!, versions[versions.length - 1]!]
}

describe.runIf(enabled)("consumer", () => {
  it("packed packages install, compile with a default tsconfig and run with node, on the lowest and highest effect", () => {
    execFileSync(process.execPath, [Path.join(root, "packaging/build.mjs")], { cwd: root, stdio: "inherit" })

    const app = Path.join(Os.tmpdir(), "ouroboros-consumer")
    const tarballs = Path.join(app, "tarballs")
    Fs.rmSync(tarballs, { recursive: true, force: true })
    Fs.mkdirSync(tarballs, { recursive: true })
    // Every publishable package packs (no private one, nothing missing from `files`).
    const packed = JSON.parse(npm([
      "pack",
      "--json",
      "--pack-destination",
      tarballs,
      ...packageDirs().flatMap((dir) => ["--workspace", Path.relative(root, dir)])
    ], root)) as Array<{ readonly name: string; readonly filename: string; readonly files: Array<{ path: string }> }>
    assert.strictEqual(packed.length, packageDirs().length)
    for (const entry of packed) {
      const paths = entry.files.map((file) => file.path)
      assert.include(paths, "dist/index.js", `${entry.name} ships dist/index.js`)
      assert.include(paths, "dist/index.d.ts", `${entry.name} ships dist/index.d.ts`)
      assert.isFalse(paths.some((path) => path.startsWith("test/")), `${entry.name} ships no tests`)
    }
    const tarballOf = new Map(packed.map((entry) => [entry.name, Path.join(tarballs, entry.filename)]))

    // Every package, so that each public module is loaded below; the program itself uses the retrieval stack.
    const manifests = packageDirs().map((dir) =>
      JSON.parse(Fs.readFileSync(Path.join(dir, "package.json"), "utf8")) as {
        readonly name: string
        readonly exports: Record<string, unknown>
        readonly peerDependencies?: Record<string, string>
      }
    )
    const needed = manifests.map((manifest) => manifest.name)
    // The peers (optional ones too: every module is loaded) other than effect and @effect/*, at their declared ranges.
    const otherPeers = Object.fromEntries(
      manifests.flatMap((manifest) => Object.entries(manifest.peerDependencies ?? {}))
        .filter(([name]) => name !== "effect" && !name.startsWith("@effect/"))
    )
    const effectPeers = [...new Set(manifests.flatMap((manifest) => Object.keys(manifest.peerDependencies ?? {})))]
      .filter((name) => name.startsWith("@effect/"))
      .sort()
    const [lowest, highest] = bounds("effect", peerRanges.effect, app)
    const effectPeerBounds = effectPeers.map((name) =>
      [name, bounds(name, peerRanges[name as keyof typeof peerRanges], app)] as const
    )
    for (const effect of new Set([lowest, highest])) {
      const source = Path.join(app, "src")
      Fs.mkdirSync(source, { recursive: true })
      Fs.copyFileSync(Path.join(root, "packaging/test/consumer/main.ts"), Path.join(source, "main.ts"))
      Fs.writeFileSync(
        Path.join(app, "package.json"),
        JSON.stringify(
          {
            name: "consumer",
            private: true,
            type: "module",
            dependencies: {
              ...Object.fromEntries(needed.map((name) => [name, `file:${tarballOf.get(name)}`])),
              ...otherPeers,
              effect,
              ...Object.fromEntries(effectPeerBounds.map(([name, [low, high]]) => [name, effect === lowest ? low : high]))
            }
          },
          null,
          2
        )
      )
      Fs.rmSync(Path.join(app, "package-lock.json"), { force: true })
      Fs.rmSync(Path.join(app, "node_modules/@ouroboros"), { recursive: true, force: true })
      npm(["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], app)
      const installed = JSON.parse(Fs.readFileSync(Path.join(app, "node_modules/effect/package.json"), "utf8"))
      assert.strictEqual(installed.version, effect)
      // One copy of effect: no package brought its own.
      const copies = npm(["ls", "effect", "--all", "--parseable"], app).trim().split("\n").filter((line) => line !== "")
      assert.deepStrictEqual(copies, [Path.join(app, "node_modules/effect")])

      Fs.rmSync(Path.join(app, "tsconfig.json"), { force: true })
      Fs.rmSync(Path.join(app, "dist"), { recursive: true, force: true })
      execFileSync(process.execPath, [tsc, "--init"], { cwd: app, stdio: "ignore", env: outside })
      const started = Date.now()
      const compiled = spawnSync(process.execPath, [tsc, "--strict", "-p", app, "--rootDir", "src", "--outDir", "dist"], {
        cwd: app,
        env: outside,
        encoding: "utf8"
      })
      const compileMillis = Date.now() - started
      assert.strictEqual(compiled.status, 0, `tsc (effect ${effect}):\n${compiled.stdout}${compiled.stderr}`)
      // Goal (issue 19): under 5 s. Reported, not asserted: the machine is shared.
      console.log(`consumer type-check and emit with effect ${effect}: ${compileMillis} ms`)

      Fs.rmSync(Path.join(app, "data"), { recursive: true, force: true })
      const run = spawnSync(process.execPath, [Path.join(app, "dist/main.js")], {
        cwd: app,
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "" }
      })
      assert.strictEqual(run.status, 0, `node dist/main.js (effect ${effect}):\n${run.stdout}${run.stderr}`)
      const lines = run.stdout.trim().split("\n")
      const result = JSON.parse(lines[lines.length - 1]!)
      assert.deepStrictEqual(result.rateLimit, { allowed: true, second: "RateLimitExceeded" })
      assert.strictEqual(result.breaker.fallback, "fallback")
      assert.deepStrictEqual(result.breaker.errors.slice(0, 2), ["Upstream", "Upstream"])
      assert.notStrictEqual(result.breaker.errors[2], "Upstream", "the third call is refused by the open breaker")
      assert.strictEqual(result.health.status, "pass")
      assert.include(result.retrieval.answer, "Zebras are African equines with black-and-white striped coats.")
      assert.deepStrictEqual(result.retrieval.sources, ["zebras"])

      // Every public module of every package loads under plain node (no dependency missing from a manifest).
      const specifiers = manifests.flatMap((manifest) =>
        Object.keys(manifest.exports).filter((key) => key !== "./package.json").map((key) =>
          key === "." ? manifest.name : `${manifest.name}/${key.slice(2)}`
        )
      )
      Fs.writeFileSync(
        Path.join(app, "load-all.mjs"),
        `for (const specifier of ${JSON.stringify(specifiers)}) await import(specifier)\nconsole.log("loaded")\n`
      )
      const loaded = spawnSync(process.execPath, [Path.join(app, "load-all.mjs")], {
        cwd: app,
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "" }
      })
      assert.strictEqual(loaded.status, 0, `loading every public module (effect ${effect}):\n${loaded.stderr}`)
      assert.strictEqual(loaded.stdout.trim(), "loaded")
    }
  }, 900_000)
})
