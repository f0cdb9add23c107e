/**
 * What the browser tests share: pages that report CSP violations and uncaught errors, signing in, axe-core checks,
 * screenshots at desktop and phone sizes, and the scenarios of the views whose admin API the server is about to serve
 * (flags, tenants, audit), run both against the preview (`preview.ts`) and, once it serves them, the real server.
 */
import { Json } from "@ouroboros/testkit"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"
import type { BrowserContext, Page } from "playwright-core"
import { assert } from "vitest"
import { artifactsDir, keys, waitFor } from "./harness.js"

const axeSource = Fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8")

export const desktop = { width: 1280, height: 900 } as const
export const phone = { width: 390, height: 844 } as const

/**
 * @since 0.1.0
 */
export interface Violation {
  readonly id: string
  readonly impact: string | null
  readonly help: string
  readonly nodes: ReadonlyArray<string>
}

/** A browser session of one test file: its pages, what went wrong in them, its a11y results and screenshots. */
export class Session {
  readonly a11y: Record<string, ReadonlyArray<Violation>> = {}
  readonly screenshots: Array<string> = []
  problems: Array<string> = []

  constructor(readonly context: BrowserContext, readonly origin: () => string, readonly prefix = "") {}

  /** Reports CSP violations as console errors, before any script of the page runs. */
  static async watchCsp(context: BrowserContext): Promise<void> {
    await context.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (event) => {
        console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`)
      })
    })
  }

  async newPage(): Promise<Page> {
    const page = await this.context.newPage()
    // Playwright's waits poll until their condition holds; the bound only ends a test that would otherwise hang, and
    // a busy CI machine (the whole suite runs beside these tests) needs more than the default 30 s.
    page.setDefaultTimeout(60_000)
    await page.setViewportSize(desktop)
    page.on("console", (message) => {
      if (message.type() === "error" && /CSP violation|Content Security Policy/i.test(message.text())) {
        this.problems.push(message.text())
      }
    })
    page.on("pageerror", (error) => this.problems.push(`page error: ${error.message}`))
    return page
  }

  /** The problems seen since the last call (none is expected). */
  takeProblems(): Array<string> {
    const found = this.problems
    this.problems = []
    return found
  }

  async signIn(page: Page, key: string, path = "", origin = this.origin()): Promise<void> {
    await page.goto(`${origin}/console/${path}`)
    await page.fill("#api-key", key)
    await page.click("form button[type=submit]")
    await page.waitForSelector("[data-testid=who]")
  }

  /** Runs axe-core on the page; no serious or critical violation may remain. */
  async checkA11y(page: Page, name: string): Promise<void> {
    if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource)
    const violations = await page.evaluate(async () => {
      const axe = (window as unknown as {
        axe: {
          run: (context: Document, options: object) => Promise<{
            violations: Array<
              { id: string; impact: string | null; help: string; nodes: Array<{ target: Array<unknown> }> }
            >
          }>
        }
      }).axe
      const results = await axe.run(document, { resultTypes: ["violations"] })
      return results.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => n.target.map(String).join(" "))
      }))
    })
    this.a11y[`${this.prefix}${name}`] = violations
    const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical")
    assert.deepStrictEqual(serious, [], `${name}: serious or critical accessibility violations`)
  }

  /** Screenshots of the page at desktop size (light and dark) and phone size, each checked with axe. */
  async capture(page: Page, name: string): Promise<void> {
    await this.checkA11y(page, `${name}-desktop`)
    const desktopFile = `${this.prefix}${name}-desktop.png`
    await page.screenshot({ path: Path.join(artifactsDir, desktopFile), fullPage: true })
    // The dark colour scheme has its own palette: its contrast is checked too.
    await page.emulateMedia({ colorScheme: "dark" })
    await this.checkA11y(page, `${name}-dark`)
    const darkFile = `${this.prefix}${name}-dark.png`
    await page.screenshot({ path: Path.join(artifactsDir, darkFile), fullPage: true })
    await page.emulateMedia({ colorScheme: "light" })
    await page.setViewportSize(phone)
    await page.waitForTimeout(100) // one layout after the resize
    await this.checkA11y(page, `${name}-phone`)
    // Nothing makes the page wider than the phone (wide tables scroll in their own region).
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    assert.isAtMost(overflow, 0, `${name}: the page is wider than a phone`)
    const phoneFile = `${this.prefix}${name}-phone.png`
    await page.screenshot({ path: Path.join(artifactsDir, phoneFile), fullPage: true })
    await page.setViewportSize(desktop)
    this.screenshots.push(desktopFile, darkFile, phoneFile)
  }

  /** A screenshot at the current size (a dialog open, say). */
  async snap(page: Page, name: string): Promise<void> {
    const file = `${this.prefix}${name}.png`
    await page.screenshot({ path: Path.join(artifactsDir, file) })
    this.screenshots.push(file)
  }

  /** Writes the a11y results and the list of screenshots next to them. */
  writeReport(name: string, extra: Record<string, unknown> = {}): void {
    Fs.mkdirSync(artifactsDir, { recursive: true })
    Fs.writeFileSync(
      Path.join(artifactsDir, `${name}.json`),
      `${JSON.stringify({ ...extra, views: this.a11y, screenshots: this.screenshots }, null, 2)}\n`
    )
  }
}

/** A call to the admin API behind the console's origin (the admin key unless told). */
export const apiOf =
  (base: () => string) => async <A>(path: string, init: { method?: string; key?: string; body?: unknown } = {}) => {
    const reply = await Json.request(`${base()}${path}`, {
      method: init.method ?? "GET",
      headers: { "x-api-key": init.key ?? keys.admin, "content-type": "application/json" },
      body: init.body
    })
    return { status: reply.status, body: reply.body as A }
  }

type Api = ReturnType<typeof apiOf>

// -----------------------------------------------------------------------------
// scenarios of the views on the APIs being wired
// -----------------------------------------------------------------------------

/** The operations each scenario needs (as `/openapi.json` lists them). */
export const needs = {
  flags: [
    "GET /admin/flags",
    "PUT /admin/flags/{key}",
    "POST /admin/flags/{key}/kill",
    "PUT /admin/flags/{key}/tenants/{tenantId}"
  ],
  tenants: [
    "GET /admin/tenants",
    "POST /admin/tenants",
    "POST /admin/tenants/{id}/keys",
    "DELETE /admin/tenants/{id}/keys/{keyId}",
    "GET /admin/tenants/{id}/usage"
  ],
  audit: ["GET /admin/audit", "GET /admin/audit/checkpoint", "GET /admin/audit/proof", "GET /admin/audit/verify"]
} as const

/** Flags: a flag's page, its kill switch pulled with a reason, a tenant override set. */
export const flagsScenario = async (session: Session, api: Api) => {
  const created = await api("/admin/flags/console-e2e", {
    method: "PUT",
    body: { state: "ENABLED", variants: { on: true, off: false }, defaultVariant: "on" }
  })
  assert.strictEqual(created.status, 200, JSON.stringify(created.body))
  const page = await session.newPage()
  await session.signIn(page, keys.admin, "flags")
  await page.waitForSelector("[data-testid=flag-row]")
  await session.capture(page, "flags-list")
  await page.click("a:text-is('console-e2e')")
  await page.waitForSelector("[data-testid=kill-state]:has-text('live')")
  assert.match(page.url(), /\/console\/flags\/console-e2e$/)
  await page.click("button:text-is('Kill…')")
  const dialog = page.locator("dialog[open]")
  await dialog.waitFor()
  await dialog.locator("#kill-variant").selectOption("off")
  await dialog.locator("textarea").fill("console e2e: kill switch")
  await dialog.locator("button[type=submit]").click()
  await page.waitForSelector("[data-testid=kill-state]:has-text('killed')")
  const flag = await api<{ kill?: { reason: string; variant?: string } }>("/admin/flags/console-e2e")
  assert.strictEqual(flag.body.kill?.reason, "console e2e: kill switch")
  assert.strictEqual(flag.body.kill?.variant, "off")
  await page.fill("#override-tenant", "tenant-a")
  await page.selectOption("#override-variant", "off")
  await page.fill("#override-reason", "console e2e")
  await page.click("button:text-is('Set override')")
  await page.waitForSelector("[data-testid=overrides] th:text-is('tenant-a')")
  const overrides = await api<Record<string, { variant: string }>>("/admin/flags/console-e2e/tenants")
  assert.strictEqual(overrides.body["tenant-a"]?.variant, "off")
  await session.capture(page, "flags")
  await page.close()
}

/** Tenants: a tenant created, a tenant-admin key shown once, the tenant admin's console, the key revoked. */
export const tenantsScenario = async (session: Session, api: Api) => {
  const page = await session.newPage()
  await session.signIn(page, keys.admin, "tenants")
  await page.waitForSelector("[data-testid=tenants]")
  await page.fill("#tenant-id", "console-e2e")
  await page.click("button:text-is('Create tenant')")
  await page.waitForSelector("h1:has-text('Tenant console-e2e')")
  assert.match(page.url(), /\/console\/tenants\/console-e2e$/)
  // A tenant-admin key, shown once.
  await page.fill("#key-name", "operator")
  await page.check("label:has-text('tenant-admin') input")
  await page.click("button:text-is('Create key')")
  const issued = (await page.innerText("[data-testid=new-key-value]")).trim()
  assert.match(issued, /^\S{16,}$/)
  await session.capture(page, "tenants")
  await page.click("button:text-is('I have stored it')")
  assert.notInclude(await page.content(), issued, "the key is gone from the page")
  // The usage of the tenant, as CSV.
  const download = page.waitForEvent("download")
  await page.click("button:text-is('Download CSV')")
  const file = await download
  assert.match(file.suggestedFilename(), /^usage-console-e2e-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/)
  const csv = Fs.readFileSync(await file.path(), "utf8")
  assert.match(csv, /^day,requests,embedded_characters,llm_tokens,stored_bytes\r?\n/)
  // The tenant administrator's console.
  const tenantPage = await session.newPage()
  await session.signIn(tenantPage, issued)
  assert.strictEqual(await tenantPage.innerText("[data-testid=who]"), "tenant-admin of console-e2e")
  const links = await tenantPage.$$eval("nav a", (as) => as.map((a) => a.textContent))
  assert.deepStrictEqual(links, ["Feature flags", "Keys and usage", "Audit log"])
  await tenantPage.waitForSelector("h1:has-text('Tenant console-e2e')")
  await tenantPage.waitForSelector("[data-testid=keys]")
  await session.capture(tenantPage, "tenant-admin")
  // Another tenant's page shows its own tenant all the same.
  await tenantPage.goto(`${session.origin()}/console/tenants/tenant-b`)
  await tenantPage.waitForSelector("h1:has-text('Tenant console-e2e')")
  // An admin view is not there for it.
  await tenantPage.goto(`${session.origin()}/console/backups`)
  await tenantPage.waitForSelector("h1:has-text('Not found')")
  await tenantPage.close()
  // Rotated: a new key, shown once, and the old one works through its grace period.
  const oldId = await page.locator("[data-testid=key-row]", { hasText: "operator" }).getAttribute("data-id")
  assert.isString(oldId)
  await page.click(`button[aria-label="Rotate key ${oldId}"]`)
  const rotate = page.locator("dialog[open]")
  await rotate.locator("#grace-hours").fill("1")
  await rotate.locator("button[type=submit]").click()
  const panel = await page.waitForSelector("[data-testid=new-key]")
  const panelText = await panel.innerText()
  assert.include(panelText, `It replaces ${oldId}`)
  const newId = /New key (\S+) for console-e2e/.exec(panelText)?.[1]
  const rotated = (await page.innerText("[data-testid=new-key-value]")).trim()
  assert.isString(newId)
  assert.notStrictEqual(rotated, issued)
  await page.click("button:text-is('I have stored it')")
  await waitFor(
    "the old key to show expiring",
    async () =>
      (await page.locator(`[data-testid=key-row][data-id="${oldId}"] [data-testid=key-status]`).innerText()) ===
        "expiring"
  )
  assert.strictEqual((await api("/api/v1/whoami", { key: rotated })).status, 200)
  // Revoked: the new key stops working at once.
  const row = page.locator(`[data-testid=key-row][data-id="${newId}"]`)
  await row.locator("button:has-text('Revoke')").click()
  await page.locator("dialog[open] button[type=submit]").click()
  await waitFor(
    "the key to show revoked",
    async () => (await row.locator("[data-testid=key-status]").innerText()) === "revoked"
  )
  // It was used (the whoami above): its last use is listed, though the server writes last uses once a minute.
  assert.notInclude(["not yet", "—", ""], (await row.locator("[data-testid=key-last-used]").innerText()).trim())
  await waitFor(
    "the revoked key to be refused",
    async () => (await api("/api/v1/whoami", { key: rotated })).status === 401
  )
  await page.close()
}

/** Waits for the audit page's rows; a wait that gives up says what the page showed instead (an error box, say). */
const auditRows = async (page: Page): Promise<void> => {
  try {
    await page.waitForSelector("[data-testid=audit-row]")
  } catch (error) {
    const shown = await page.innerText("main").catch(() => "(no main element)")
    throw new Error(`no audit rows at ${page.url()}; the page showed:\n${shown.slice(0, 2000)}`, { cause: error })
  }
}

/** Audit: the checkpoint's signature with the pinned key, each entry's proof, the whole log, a filter in the URL. */
export const auditScenario = async (session: Session, api: Api) => {
  // An entry for this run (the breaker actions of the other tests are audited once the server wires it).
  const page = await session.newPage()
  await session.signIn(page, keys.admin, "audit")
  await page.waitForSelector("[data-testid=checkpoint]")
  await page.waitForSelector("[data-testid=checkpoint-signature]:has-text('no verifier key pinned')")
  // Pin the log's key (as the server reports it): the signature verifies.
  const verify = await api<{ verifierKey: string; ok: boolean }>("/admin/audit/verify")
  assert.isTrue(verify.body.ok)
  await page.fill("#verifier-key", verify.body.verifierKey)
  await page.click("button:text-is('Pin key')")
  await page.waitForSelector("[data-testid=checkpoint-signature]:has-text('signature verified')")
  await auditRows(page)
  await waitFor("every proof on the page to be checked", async () => {
    const states = await page.$$eval("[data-testid=proof]", (cells) => cells.map((c) => c.textContent ?? ""))
    return states.length > 0 && states.every((s) => s === "included" || s === "after the checkpoint") &&
      states.includes("included")
  })
  await page.click("button:has-text('entries here')")
  await page.waitForSelector("[data-testid=whole-log-result]:has-text(\"hash to the checkpoint's root\")", {
    timeout: 60_000
  })
  await session.capture(page, "audit")
  // A filter goes into the URL, and the URL brings it back.
  await page.selectOption("#audit-type", "admin.action")
  await page.click("button:text-is('Search')")
  await waitFor("the filter in the URL", async () => page.url().includes("type=admin.action"))
  await waitFor("only admin actions listed", async () => {
    const types = await page.$$eval(
      "[data-testid=audit-row] td:nth-child(3)",
      (cells) => cells.map((c) => c.textContent)
    )
    return types.length > 0 && types.every((t) => t === "admin.action")
  })
  await page.reload()
  assert.strictEqual(await page.inputValue("#audit-type"), "admin.action")
  // A second page by cursor, when there is one.
  const limited = `${session.origin()}/console/audit?limit=25`
  await page.goto(limited)
  await auditRows(page)
  const older = page.locator("a:text-is('Older entries')")
  if (await older.count() > 0) {
    const first = await page.innerText("[data-testid=audit-row] td:first-child")
    await older.click()
    await waitFor("the next page", async () => page.url().includes("cursor="))
    await waitFor(
      "other entries",
      async () => (await page.innerText("[data-testid=audit-row] td:first-child")) !== first
    )
  }
  // The key pinned in local storage is the public verifier key, never the API key.
  const local = await page.evaluate(() => Object.values(localStorage).join("\n"))
  assert.notInclude(local, keys.admin)
  await page.close()
}
