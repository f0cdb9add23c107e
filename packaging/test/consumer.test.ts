/**
 * The packages as a third party gets them: every publishable package built (`packaging/build.mjs`) and packed with
 * `npm pack`; the tarballs installed into a scratch application outside the workspace with the lowest and the highest
 * `effect` that the peer ranges allow (with the lowest, only the packages that admit it: those without
 * @effect/sql-pg); `consumer/core.ts` (and, where installed, `consumer/retrieval.ts`) compiled by plain
 * `tsc --strict` with the configuration `tsc --init` writes (no option of ours) and run by plain `node`; then every
 * public module of every installed package loaded by plain `node`.
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
import { packageDirs } from "../manifest.mjs"

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

/** The published versions of a package in a range, in the registry's order. */
const versions = (name: string, range: string, cwd: string): ReadonlyArray<string> => {
  const found = [JSON.parse(npm(["view", `${name}@${range}`, "version", "--json"], cwd))].flat() as Array<string>
  assert.isAtLeast(found.length, 1, `${name}@${range} has published versions`)
  return found
}

describe.runIf(enabled)("consumer", () => {
  it(
    "packed packages install, compile with a default tsconfig and run with node, on the lowest and highest effect",
    () => {
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

      const manifests = packageDirs().map((dir) =>
        JSON.parse(Fs.readFileSync(Path.join(dir, "package.json"), "utf8")) as {
          readonly name: string
          readonly exports: Record<string, unknown>
          readonly peerDependencies: Record<string, string>
        }
      )
      // The published versions each package's effect range admits; the runs are on the lowest and the highest of all.
      const admitted = new Map(
        [...new Set(manifests.map((manifest) => manifest.peerDependencies.effect!))].map((range) =>
          [range, new Set(versions("effect", range, app))] as const
        )
      )
      const all = [...new Set([...admitted.values()].flatMap((set) => [...set]))]
      const published = JSON.parse(npm(["view", "effect", "versions", "--json"], app)) as Array<string>
      const ordered = published.filter((version) => all.includes(version))
      const lowest = ordered[0]!
      const highest = ordered[ordered.length - 1]!

      for (const effect of new Set([lowest, highest])) {
        // Every package whose peer range admits this effect (each is installed so that every public module loads).
        const installedManifests = manifests.filter((manifest) =>
          admitted.get(manifest.peerDependencies.effect!)!.has(effect)
        )
        const names = installedManifests.map((manifest) => manifest.name)
        const peers = Object.fromEntries(
          installedManifests.flatMap((manifest) => Object.entries(manifest.peerDependencies))
        )
        // The other @effect/* peers at their lowest version with the lowest effect, their highest otherwise; the rest
        // (optional ones too: every module is loaded) at their declared ranges.
        const peerVersions = Object.fromEntries(
          Object.entries(peers).filter(([name]) => name !== "effect").map((
            [name, range]
          ) => {
            if (!name.startsWith("@effect/")) return [name, range]
            const published = versions(name, range, app)
            return [name, effect === lowest ? published[0]! : published[published.length - 1]!]
          })
        )
        const programs = ["core", ...(names.includes("@ouroboros/retrieval") ? ["retrieval"] : [])]
        assert.includeMembers(names, ["@ouroboros/rate-limit", "@ouroboros/circuit-breaker", "@ouroboros/health"])

        const source = Path.join(app, "src")
        Fs.rmSync(source, { recursive: true, force: true })
        Fs.mkdirSync(source, { recursive: true })
        for (const program of programs) {
          Fs.copyFileSync(
            Path.join(root, `packaging/test/consumer/${program}.ts`),
            Path.join(source, `${program}.ts`)
          )
        }
        Fs.writeFileSync(
          Path.join(app, "package.json"),
          JSON.stringify(
            {
              name: "consumer",
              private: true,
              type: "module",
              dependencies: {
                ...Object.fromEntries(names.map((name) => [name, `file:${tarballOf.get(name)}`])),
                ...peerVersions,
                effect
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
        const copies = npm(["ls", "effect", "--all", "--parseable"], app).trim().split("\n").filter((line) =>
          line !== ""
        )
        assert.deepStrictEqual(copies, [Path.join(app, "node_modules/effect")])

        // `tsc --init`'s configuration, then a type-check and emit with plain `tsc --strict`, timed.
        const typeCheck = (dir: string, what: string) => {
          Fs.rmSync(Path.join(dir, "tsconfig.json"), { force: true })
          Fs.rmSync(Path.join(dir, "dist"), { recursive: true, force: true })
          execFileSync(process.execPath, [tsc, "--init"], { cwd: dir, stdio: "ignore", env: outside })
          const started = Date.now()
          const compiled = spawnSync(
            process.execPath,
            [tsc, "--strict", "-p", dir, "--rootDir", "src", "--outDir", "dist"],
            { cwd: dir, env: outside, encoding: "utf8" }
          )
          const millis = Date.now() - started
          assert.strictEqual(
            compiled.status,
            0,
            `tsc (${what}, effect ${effect}):\n${compiled.stdout}${compiled.stderr}`
          )
          return millis
        }
        const compileMillis = typeCheck(app, "the consumer")
        // The same configuration on a program of the same shape written with effect alone: what any Effect
        // application pays, so that the difference is what the packages add. Beside the app (not inside it: the app's
        // tsconfig would include it), on the app's node_modules.
        const baseline = `${app}-baseline`
        Fs.rmSync(baseline, { recursive: true, force: true })
        Fs.mkdirSync(Path.join(baseline, "src"), { recursive: true })
        Fs.symlinkSync(Path.join(app, "node_modules"), Path.join(baseline, "node_modules"), "dir")
        Fs.writeFileSync(Path.join(baseline, "package.json"), JSON.stringify({ name: "baseline", type: "module" }))
        Fs.copyFileSync(Path.join(root, "packaging/test/consumer/baseline.ts"), Path.join(baseline, "src/index.ts"))
        const baselineMillis = typeCheck(baseline, "the effect-only baseline")
        // Goal (issue 19): under 5 s. Reported, not asserted: the machine is shared.
        console.log(
          `consumer type-check and emit of ${programs.join(", ")} with effect ${effect}: ${compileMillis} ms ` +
            `(the same shape with effect alone: ${baselineMillis} ms)`
        )

        const run = (program: string) => {
          Fs.rmSync(Path.join(app, "data"), { recursive: true, force: true })
          const result = spawnSync(process.execPath, [Path.join(app, `dist/${program}.js`)], {
            cwd: app,
            encoding: "utf8",
            env: { PATH: process.env.PATH ?? "" }
          })
          assert.strictEqual(
            result.status,
            0,
            `node dist/${program}.js (effect ${effect}):\n${result.stdout}${result.stderr}`
          )
          const lines = result.stdout.trim().split("\n")
          return JSON.parse(lines[lines.length - 1]!)
        }
        const core = run("core")
        assert.deepStrictEqual(core.rateLimit, { allowed: true, second: "RateLimitExceeded" })
        assert.strictEqual(core.breaker.fallback, "fallback")
        assert.deepStrictEqual(core.breaker.errors.slice(0, 2), ["Upstream", "Upstream"])
        assert.notStrictEqual(core.breaker.errors[2], "Upstream", "the third call is refused by the open breaker")
        assert.strictEqual(core.health.status, "pass")
        if (programs.includes("retrieval")) {
          const retrieval = run("retrieval")
          assert.include(retrieval.answer, "Zebras are African equines with black-and-white striped coats.")
          assert.deepStrictEqual(retrieval.sources, ["zebras"])
        }
        assert.isTrue(
          programs.includes("retrieval") || effect !== highest,
          "the highest effect runs the retrieval program"
        )

        // Every public module of every installed package loads under plain node (no dependency missing from a manifest).
        const specifiers = installedManifests.flatMap((manifest) =>
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
        console.log(`effect ${effect}: ${names.length} packages installed, ${specifiers.length} public modules loaded`)
      }
    },
    900_000
  )
})
