/**
 * The README's example, run as a third party would run it: its code block is written to a file of the package (so
 * that `@ouroboros/retrieval` resolves to the package itself) and run by Node with tsx, in a fresh working directory
 * for its `data/`.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const readme = Fs.readFileSync(Path.join(packageDir, "README.md"), "utf8")

/** The first `ts` code block of a section. */
const codeOf = (section: string): string => {
  const start = readme.indexOf(`## ${section}\n`)
  assert.isAtLeast(start, 0, `the README has a section ${section}`)
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(start))
  assert.isNotNull(block, `the section ${section} has a ts code block`)
  return block![1]!
}

const run = (file: string, cwd: string) =>
  new Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>((resolve, reject) => {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href
    const child = spawn(process.execPath, ["--import", tsx, file], { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += String(chunk)))
    child.stderr.on("data", (chunk) => (stderr += String(chunk)))
    child.once("error", reject)
    child.once("exit", (code) => resolve({ code, stdout, stderr }))
  })

describe("README", () => {
  it("the example ingests a document and answers from it", async () => {
    const code = codeOf("Example")
    assert.include(code, "from \"@ouroboros/retrieval\"")
    const scratch = Fs.mkdtempSync(Path.join(packageDir, ".readme-"))
    const cwd = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-readme-"))
    try {
      const file = Path.join(scratch, "example.ts")
      Fs.writeFileSync(file, code)
      const result = await run(file, cwd)
      assert.strictEqual(result.code, 0, result.stderr)
      // The local extractive answerer quotes the passage, and the source is the ingested document.
      assert.include(result.stdout, "Zebras are African equines with black-and-white striped coats.")
      assert.include(result.stdout, "[ 'zebras' ]")
      assert.isTrue(Fs.existsSync(Path.join(cwd, "data", "vectors", "documents")), "the vectors are under data/")
    } finally {
      Fs.rmSync(scratch, { recursive: true, force: true })
      Fs.rmSync(cwd, { recursive: true, force: true })
    }
  }, 120_000)
})
