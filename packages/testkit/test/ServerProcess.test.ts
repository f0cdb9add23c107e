import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as ServerProcess from "../src/ServerProcess.js"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-serverprocess-"))
const script = (name: string, source: string) => {
  const path = Path.join(dir, name)
  Fs.writeFileSync(path, source)
  return path
}

// Ready after a few not-ready answers; reports what it was given; exits on SIGTERM.
const server = script(
  "server.mjs",
  `import * as Http from "node:http"
let asked = 0
Http.createServer((request, response) => {
  if (request.url === "/health/ready") {
    response.writeHead(++asked > 3 ? 200 : 503).end()
  } else {
    response.writeHead(200, { "content-type": "application/json" })
      .end(JSON.stringify({ dataDir: process.env.DATA_DIR, home: process.env.HOME ?? null, extra: process.env.EXTRA }))
  }
}).listen(Number(process.env.PORT), process.env.HOST)
console.log("listening")
process.on("SIGTERM", () => process.exit(0))
`
)
afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))

const refusing = script("refusing.mjs", `console.error("refused: no key"); process.exit(3)\n`)

describe("ServerProcess", () => {
  it("starts a program on a free port and a fresh data directory, with a minimal environment, once it is ready", async () => {
    const running = await ServerProcess.start({ main: server, env: { EXTRA: "yes" } })
    try {
      const seen = await fetch(`${running.url}/`).then((r) => r.json()) as Record<string, unknown>
      assert.strictEqual(seen.dataDir, running.dataDir)
      assert.strictEqual(seen.extra, "yes")
      // Nothing of the runner's environment but PATH.
      assert.isNull(seen.home)
      assert.isTrue(Fs.existsSync(running.dataDir))
      assert.include(running.output(), "listening")
    } finally {
      await running.stop()
    }
    assert.isFalse(Fs.existsSync(running.dataDir))
    assert.strictEqual(await running.exited, 0)
  })

  it("keeps a data directory it was given", async () => {
    const dataDir = Fs.mkdtempSync(Path.join(dir, "data-"))
    const running = await ServerProcess.start({ main: server, dataDir })
    await running.stop()
    assert.isTrue(Fs.existsSync(dataDir))
  })

  it("says when the program exits before it is ready, with its code; start fails with its output", async () => {
    const spawned = await ServerProcess.spawn({ main: refusing })
    const outcome = await ServerProcess.awaitReady(spawned)
    assert.deepStrictEqual(outcome, { ready: false, code: 3 })
    assert.include(spawned.output(), "refused: no key")
    await spawned.stop()
    const error = await ServerProcess.start({ main: refusing }).then(() => undefined, (e: Error) => e)
    assert.isDefined(error)
    assert.include(error!.message, "code 3")
    assert.include(error!.message, "refused: no key")
  })
})
