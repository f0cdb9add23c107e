/**
 * The publishable packages' package.json and tsconfig.build.json are what packaging/manifest.mjs computes from their
 * sources: an `exports` entry for each public module and none for `internal/`, effect and @effect/* as peers, every
 * imported package declared. After adding a module or an import: `node packaging/manifest.mjs --write`, then
 * `npm install` for the lock file.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { buildConfig, manifest, packageDirs, render, sourceCondition } from "../manifest.mjs"

describe("manifests", () => {
  for (const dir of packageDirs()) {
    const name = Path.basename(dir)
    it(`${name}: package.json and tsconfig.build.json are up to date`, () => {
      assert.strictEqual(Fs.readFileSync(Path.join(dir, "package.json"), "utf8"), render(manifest(dir)))
      assert.strictEqual(Fs.readFileSync(Path.join(dir, "tsconfig.build.json"), "utf8"), render(buildConfig(dir)))
    })
    it(`${name}: exports only public modules, each from its sources and from dist/`, () => {
      const current = JSON.parse(Fs.readFileSync(Path.join(dir, "package.json"), "utf8"))
      assert.isUndefined(current.private)
      const entries = Object.entries(current.exports as Record<string, unknown>)
      assert.isFalse(entries.some(([key]) => key.includes("internal") || key.includes("*")))
      for (const [key, target] of entries) {
        if (key === "./package.json") continue
        const { [sourceCondition]: source } = target as Record<string, string>
        assert.isTrue(Fs.existsSync(Path.join(dir, source!)), `${key} → ${source}`)
      }
    })
  }
})
