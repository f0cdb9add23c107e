/**
 * The views of the admin APIs the server is about to serve — feature flags, tenants and keys, the audit log — driven
 * in headless Chromium against the packages' own `HttpApi`s (`preview.ts`), so that they are tested before the
 * server wires them. `Console.e2e.test.ts` runs the same scenarios through the real server once `/openapi.json`
 * lists their routes.
 */
import * as Fs from "node:fs"
import { afterAll, afterEach, assert, beforeAll, describe, it } from "vitest"
import { apiOf, auditScenario, desktop, flagsScenario, Session, tenantsScenario } from "./browser.js"
import { artifactsDir, ensureBuilt, launchBrowser } from "./harness.js"
import { type Preview, startPreview } from "./preview.js"

type Browser = Awaited<ReturnType<typeof launchBrowser>>

let preview: Preview
let browser: Browser
let session: Session

beforeAll(async () => {
  ensureBuilt()
  Fs.mkdirSync(artifactsDir, { recursive: true })
  preview = await startPreview()
  browser = await launchBrowser({ viewport: desktop })
  await Session.watchCsp(browser.context)
  session = new Session(browser.context, () => preview.url, "preview-")
}, 120_000)

afterAll(async () => {
  session?.writeReport("a11y-preview")
  await browser?.close()
  await preview?.stop()
}, 60_000)

afterEach(() => {
  assert.deepStrictEqual(session.takeProblems(), [], "CSP violations or page errors")
})

const api = apiOf(() => preview.url)

describe("the console on the packages' admin APIs", () => {
  it("Flags: kills a flag with a reason and sets a tenant override", () => flagsScenario(session, api), 90_000)

  it(
    "Tenants: creates a key shown once, revokes it, and a tenant admin sees only its tenant",
    () => tenantsScenario(session, api),
    120_000
  )

  it(
    "Audit: checks each entry's inclusion proof and the whole log against the signed checkpoint",
    () => auditScenario(session, api),
    240_000
  )
})
