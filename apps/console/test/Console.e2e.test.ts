/**
 * The console end to end: headless Chromium drives the built console against the real server (the built
 * `apps/server/dist/main.js` as a child process, with the Ollama stand-in so that it has a circuit breaker), served
 * from one origin (see `harness.ts`). Every view is opened, checked with axe-core (no serious or critical violation,
 * desktop and phone layouts) and saved as screenshots under `test/artifacts/`.
 *
 * A view whose admin API the server does not serve is skipped with a message naming the missing routes — only when
 * the API is truly absent: an operation missing from `GET /openapi.json` whose route answers all the same fails the
 * test (the server serves something the console does not expect). Likewise the page itself: it is loaded from the
 * server's own `/console` when the server serves it, else from a console host in this process (`harness.ts`); in CI
 * (`CI=true`) a server that does not serve `/console` fails.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { Page } from "playwright-core"
import { afterAll, afterEach, assert, beforeAll, describe, it, type TestContext } from "vitest"
import { apiOf, auditScenario, desktop, flagsScenario, needs, Session, tenantsScenario } from "./browser.js"
import {
  artifactsDir,
  ensureBuilt,
  type Host,
  keys,
  launchBrowser,
  type ServerProcess,
  startHost,
  startOllama,
  startServer,
  waitFor
} from "./harness.js"

type Stand = Awaited<ReturnType<typeof startOllama>>
type Browser = Awaited<ReturnType<typeof launchBrowser>>

let ollama: Stand
let backupDir: string
let server: ServerProcess
let host: Host
let browser: Browser
let session: Session
let operations: ReadonlySet<string> = new Set()

beforeAll(async () => {
  ensureBuilt()
  Fs.mkdirSync(artifactsDir, { recursive: true })
  ollama = await startOllama()
  backupDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ouroboros-console-backups-"))
  server = await startServer({ backupDir, env: { OLLAMA_URL: ollama.url } })
  host = await startHost(server)
  browser = await launchBrowser({ viewport: desktop })
  await Session.watchCsp(browser.context)
  session = new Session(browser.context, () => host.url)
  const openapi = await fetch(`${server.url}/openapi.json`).then((r) =>
    r.json() as Promise<{ paths: Record<string, object> }>
  )
  operations = new Set(
    Object.entries(openapi.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`)
    )
  )
}, 180_000)

afterAll(async () => {
  session?.writeReport("a11y-server", { host: host?.mode })
  await browser?.close()
  await host?.stop()
  await server?.stop()
  await ollama?.close()
  if (backupDir !== undefined) Fs.rmSync(backupDir, { recursive: true, force: true })
}, 60_000)

afterEach((context) => {
  // A failed test shows what the server wrote (it logs errors only): a 500 on the page says no more than that.
  if (context.task.result?.state === "fail") {
    console.error(`the server's output up to the failure:\n${server?.output().slice(-20_000) || "(nothing)"}`)
  }
  assert.deepStrictEqual(session.takeProblems(), [], "CSP violations or page errors")
})

const newPage = () => session.newPage()
const signIn = (page: Page, key: string, path = "") => session.signIn(page, key, path)
const checkA11y = (page: Page, name: string) => session.checkA11y(page, name)
const capture = (page: Page, name: string) => session.capture(page, name)
const api = apiOf(() => server.url)

/** The view is shown without a full reload (a marker set on `window` survives). */
const navigateWithoutReload = async (page: Page, link: string, heading: string) => {
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42))
  await page.click(`nav a:text-is("${link}")`)
  await page.waitForSelector(`h1:has-text("${heading}")`)
  assert.strictEqual(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, "no reload")
}

const inCi = process.env.CI === "true"

/**
 * Skips the test when the server does not serve the API a view needs, naming the missing operations. An operation
 * missing from `/openapi.json` whose route answers a GET with anything but 404 is served without being documented as
 * the console expects: that fails, it does not skip.
 */
const requireServed = async (context: TestContext, required: ReadonlyArray<string>): Promise<void> => {
  const absent = required.filter((op) => !operations.has(op))
  if (absent.length === 0) return
  const answering: Array<string> = []
  for (const op of absent) {
    const [method, path] = op.split(" ") as [string, string]
    if (method !== "GET" || path.includes("{")) continue
    const probe = await fetch(`${server.url}${path}`, { headers: { "x-api-key": keys.admin } })
    await probe.body?.cancel()
    if (probe.status !== 404) answering.push(`${op} (${probe.status})`)
  }
  assert.deepStrictEqual(answering, [], "served, but not listed in /openapi.json as the console expects")
  context.skip(`the server does not serve ${absent.join(", ")} yet`)
}

describe("the operator console", () => {
  it(
    "is served by the server itself at /console: the page, its hashed assets compressed and cached",
    async (context) => {
      if (host.mode !== "server") {
        // The wiring is apps/server's (ConsoleHttp.layerConfig in its routes); CI runs the server as it ships.
        assert.isFalse(inCi, "the server does not serve /console")
        return context.skip("the server does not serve /console yet: the page comes from this process's console host")
      }
      const page = await fetch(`${server.url}/console/breakers`, { headers: { "accept-encoding": "br, gzip" } })
      assert.strictEqual(page.status, 200)
      assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
      assert.strictEqual(page.headers.get("cache-control"), "no-cache")
      assert.include(page.headers.get("content-security-policy") ?? "", "script-src 'self'")
      const html = await page.text()
      const script = /<script[^>]+src="([^"]+)"/.exec(html)?.[1]
      assert.isString(script)
      const asset = await fetch(new URL(script!, `${server.url}/console/`), { headers: { "accept-encoding": "br" } })
      assert.strictEqual(asset.status, 200)
      assert.strictEqual(asset.headers.get("content-encoding"), "br")
      assert.include(asset.headers.get("cache-control") ?? "", "immutable")
      await asset.body?.cancel()
      // The page is public (no key), and an unknown asset is a problem, not the page.
      const unknown = await fetch(`${server.url}/console/assets/app-0000000000.js`)
      assert.strictEqual(unknown.status, 404)
      assert.match(unknown.headers.get("content-type") ?? "", /problem\+json/)
    },
    30_000
  )

  it("refuses a wrong key with the server's problem and its correlation id", async () => {
    const page = await newPage()
    await page.goto(`${host.url}/console/`)
    assert.strictEqual(await page.title(), "Sign in · Ouroboros console")
    await page.fill("#api-key", "wrong-key-0123456789")
    await page.click("form button[type=submit]")
    const error = await page.waitForSelector("[data-testid=error]")
    const text = await error.innerText()
    assert.include(text, "Unauthorized (401)")
    assert.include(text, "GET /api/v1/whoami")
    assert.match(await page.innerText("[data-testid=correlation-id]"), /^[0-9a-f-]{36}$/)
    await capture(page, "sign-in-error")
    await page.close()
  }, 60_000)

  it("keeps the key in this tab's session storage only, and forgets it on sign-out", async () => {
    const page = await newPage()
    const urls: Array<string> = []
    page.on("request", (request) => urls.push(request.url()))
    await signIn(page, keys.admin)
    assert.strictEqual(await page.innerText("[data-testid=who]"), "admin")
    const stored = await page.evaluate(() => ({
      session: Object.values(sessionStorage).join("\n"),
      local: Object.values(localStorage).join("\n")
    }))
    assert.include(stored.session, keys.admin)
    assert.notInclude(stored.local, keys.admin)
    // A reload of the tab keeps the session (session storage lives as long as the tab).
    await page.reload()
    await page.waitForSelector("[data-testid=who]")
    assert.isTrue(urls.length > 0)
    for (const url of [...urls, page.url()]) assert.notInclude(url, keys.admin)
    await page.click("button:text-is('Sign out')")
    await page.waitForSelector("#api-key")
    assert.strictEqual(await page.evaluate(() => Object.values(sessionStorage).join("")), "")
    // Another tab starts signed out.
    const other = await newPage()
    await other.goto(`${host.url}/console/`)
    await other.waitForSelector("#api-key")
    await other.close()
    await page.close()
  }, 60_000)

  it("Overview: every readiness check, and live charts from /metrics", async () => {
    const page = await newPage()
    await signIn(page, keys.admin, "overview")
    await page.waitForSelector("[data-testid=health-check]")
    const ready = await fetch(`${server.url}/health/ready`).then((r) =>
      r.json() as Promise<{ checks: Record<string, unknown> }>
    )
    const shown = await page.$$eval("[data-testid=health-check] th", (cells) => cells.map((c) => c.textContent))
    assert.deepStrictEqual([...shown].sort(), Object.keys(ready.checks).sort())
    assert.include(Object.keys(ready.checks), "ollama:version")
    // Two readings make the first point of the in-flight chart.
    await page.waitForSelector("[data-testid='chart-In flight'] svg path.line[d*=L]", {
      state: "attached",
      timeout: 30_000
    })
    assert.include(await page.innerText("[data-testid=overview-breakers]"), "ollama")
    await capture(page, "overview")
    await page.close()
  }, 60_000)

  it("Breakers: forces a breaker open with a reason, shows it open, and resets it", async () => {
    const page = await newPage()
    await signIn(page, keys.admin)
    await navigateWithoutReload(page, "Circuit breakers", "Circuit breakers")
    assert.match(page.url(), /\/console\/breakers$/)
    const card = page.locator("[data-testid=breaker-ollama]")
    await card.waitFor()
    assert.strictEqual(await card.locator("[data-testid=breaker-state]").innerText(), "closed")
    await card.locator("button:text-is('Force open')").click()
    const dialog = page.locator("dialog[open]")
    await dialog.waitFor()
    const confirm = dialog.locator("button[type=submit]")
    assert.isTrue(await confirm.isDisabled(), "no reason, no action")
    await dialog.locator("textarea").fill("console e2e: Ollama upgrade window")
    await checkA11y(page, "breakers-dialog")
    await session.snap(page, "breakers-dialog-desktop")
    await confirm.click()
    await dialog.waitFor({ state: "detached" }).catch(() => dialog.waitFor({ state: "hidden" }))
    await waitFor(
      "the breaker to show forced-open",
      async () => (await card.locator("[data-testid=breaker-state]").innerText()) === "forced-open"
    )
    const breakers = await api<Array<{ name: string; state: string }>>("/admin/circuit-breakers")
    assert.strictEqual(breakers.body.find((b) => b.name === "ollama")?.state, "forced-open")
    await waitFor(
      "the announcement",
      async () => (await page.innerText("[data-testid=announcer]")).includes("ollama is now forced-open")
    )
    await capture(page, "breakers")
    await card.locator("button:text-is('Reset')").click()
    await dialog.locator("textarea").fill("console e2e: done")
    await dialog.locator("button[type=submit]").click()
    await waitFor(
      "the breaker to show closed",
      async () => (await card.locator("[data-testid=breaker-state]").innerText()) === "closed"
    )
    await page.close()
  }, 90_000)

  it("Backups: creates and verifies a backup, and restores it on a copy after the id is typed", async () => {
    // Something to back up: a document of tenant-a.
    const ingested = await api("/api/v1/documents", {
      method: "POST",
      key: keys.tenantA,
      body: { id: "zebras", text: "Zebras are African equines with black-and-white stripes." }
    })
    assert.strictEqual(ingested.status, 201)
    const page = await newPage()
    await signIn(page, keys.admin, "backups")
    await page.selectOption("#backup-kind", "full")
    await page.click("button:text-is('Create backup')")
    const outcome = await page.waitForSelector("[data-testid=backup-outcome]", { timeout: 60_000 })
    const id = /Backup (\S+) taken/.exec(await outcome.innerText())?.[1]
    assert.isDefined(id)
    await page.waitForSelector(`[data-testid=backup-row][data-id="${id}"]`)
    await page.click(`button[aria-label="Verify ${id}"]`)
    await page.waitForSelector(`[data-testid=backup-outcome]:has-text("Backup ${id} verified")`, { timeout: 60_000 })
    await page.waitForSelector(`[data-testid=backup-row][data-id="${id}"] :text("verified (checksums)")`)
    await capture(page, "backups")
    await page.close()

    // The copy: another server with its own data directory and the same backup directory.
    const list = await api<Array<{ manifest: { id: string; events: { to: number } } }>>("/admin/backups")
    const sequence = list.body.find((b) => b.manifest.id === id)!.manifest.events.to
    const copy = await startServer({ backupDir })
    const copyHost = await startHost(copy)
    try {
      const before = await fetch(`${copy.url}/api/v1/documents/zebras`, { headers: { "x-api-key": keys.tenantA } })
      assert.strictEqual(before.status, 404)
      const restorePage = await newPage()
      await restorePage.goto(`${copyHost.url}/console/backups`)
      await restorePage.fill("#api-key", keys.admin)
      await restorePage.click("form button[type=submit]")
      await restorePage.click(`button[aria-label="Restore ${id}"]`)
      const dialog = restorePage.locator("dialog[open]")
      await dialog.waitFor()
      await dialog.locator("label:has-text('an event sequence number') input").check()
      await dialog.locator("#restore-sequence").fill(String(sequence))
      const confirm = dialog.locator("button[type=submit]")
      await dialog.locator("input[autocomplete=off]").last().fill(id!.slice(0, -1))
      assert.isTrue(await confirm.isDisabled(), "a mistyped id does not confirm")
      await dialog.locator("input[autocomplete=off]").last().fill(id!)
      await checkA11y(restorePage, "backups-restore-dialog")
      await session.snap(restorePage, "backups-restore-dialog-desktop")
      await confirm.click()
      const result = await restorePage.waitForSelector("[data-testid=restore-result]", { timeout: 90_000 })
      assert.include(await result.innerText(), id!)
      const after = await fetch(`${copy.url}/api/v1/documents/zebras`, { headers: { "x-api-key": keys.tenantA } })
      assert.strictEqual(after.status, 200)
      await restorePage.close()
    } finally {
      await copyHost.stop()
      await copy.stop()
    }
  }, 240_000)

  it("is keyboard-operable: skip link, navigation, dialogs that give focus back", async () => {
    const page = await newPage()
    await signIn(page, keys.admin, "overview")
    // A fresh load: the first Tab reaches the skip link.
    await page.reload()
    await page.waitForSelector("h1:has-text('Overview')")
    await page.keyboard.press("Tab")
    assert.strictEqual(await page.evaluate(() => document.activeElement?.textContent), "Skip to content")
    await page.keyboard.press("Enter")
    assert.strictEqual(await page.evaluate(() => document.activeElement?.id), "main")
    // From the navigation: the focused link, Enter, and focus lands on the new view's heading.
    await page.focus("nav a:text-is('Circuit breakers')")
    await page.keyboard.press("Enter")
    await page.waitForSelector("h1:has-text('Circuit breakers')")
    await waitFor(
      "focus on the heading",
      async () => (await page.evaluate(() => document.activeElement?.tagName)) === "H1"
    )
    const force = page.locator("[data-testid=breaker-ollama] button:text-is('Force open')")
    await force.focus()
    await page.keyboard.press("Enter")
    await page.waitForSelector("dialog[open]")
    assert.isTrue(await page.evaluate(() => document.activeElement?.closest("dialog") !== null), "focus in the dialog")
    await page.keyboard.press("Escape")
    await page.waitForSelector("dialog[open]", { state: "detached" })
    assert.strictEqual(await page.evaluate(() => document.activeElement?.textContent), "Force open")
    // Focus is visible.
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)
    assert.notStrictEqual(outline, "none")
    await page.close()
  }, 60_000)

  it("answers every deep link with its view, after sign-in too, and says when there is no such view", async () => {
    const page = await newPage()
    await signIn(page, keys.admin, "backups")
    await page.waitForSelector("h1:has-text('Backups')")
    assert.strictEqual(await page.title(), "Backups · Ouroboros console")
    await page.goto(`${host.url}/console/no-such-view`)
    await page.waitForSelector("h1:has-text('Not found')")
    await page.click("main a")
    await page.waitForSelector("h1:has-text('Overview')")
    await page.goBack()
    await page.waitForSelector("h1:has-text('Not found')")
    await page.close()
  }, 60_000)

  it("Flags: kills a flag with a reason and sets a tenant override", async (context) => {
    await requireServed(context, needs.flags)
    await flagsScenario(session, api)
  }, 90_000)

  it("Tenants: creates a key shown once, revokes it, and a tenant admin sees only its tenant", async (context) => {
    await requireServed(context, needs.tenants)
    await tenantsScenario(session, api)
  }, 120_000)

  it("Audit: checks each entry's inclusion proof and the whole log against the signed checkpoint", async (context) => {
    await requireServed(context, needs.audit)
    await auditScenario(session, api)
  }, 240_000)
})
