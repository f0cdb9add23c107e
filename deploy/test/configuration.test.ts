/**
 * Every environment variable the root README's configuration tables document is read by the server (its sources and
 * the packages it reaches), and every variable the server reads is documented there (issue 20, "every documented
 * variable is read, and every variable read is documented"). The names the code reads come from the same scanner as
 * `deploy/test/manifests.test.ts` (`deploy/test/lib/config-keys.ts`: `Config.*("NAME")` calls, followed through
 * `Config.nested` and the packages' `config` exports); a wildcard row of the README (`OTEL_*`) documents a prefix.
 */
import { readFileSync } from "node:fs"
import { resolve } from "node:path"
import { assert, describe, it } from "vitest"
import { readmeNames, scanConfigKeys } from "./lib/config-keys.js"

const repo = resolve(import.meta.dirname, "../..")

// The scanner works at package granularity: it counts every `config` a reachable package exports. The event store's
// (`MAX_GROUP_SIZE`, `READ_BATCH_SIZE`) is read only through `EventStore.layerConfig`, which the server does not call
// (docs/deployment.md says so, and docs/test checks it): not a variable of the server while that holds.
const serverSource = ["Server.ts", "cli.ts"].map((f) => readFileSync(resolve(repo, "apps/server/src", f), "utf8")).join(
  "\n"
)
const notRead = serverSource.includes("EventStore.layerConfig") ? [] : ["MAX_GROUP_SIZE", "READ_BATCH_SIZE"]

describe("configuration: the README and the code agree", () => {
  const scan = scanConfigKeys(repo)
  const readme = readmeNames(readFileSync(resolve(repo, "README.md"), "utf8"))
  const documented = (name: string) => readme.names.has(name) || [...readme.prefixes].some((p) => name.startsWith(p))

  it("the scanner reads the server's configuration", () => {
    // A scanner that found nothing would make the two checks below pass vacuously.
    for (const name of ["PORT", "DATABASE_URL", "AUDIT_SIGNING_KEY", "HTTP_MAX_HEADER_SIZE", "HEALTH_CACHE_TTL"]) {
      assert.isTrue(scan.names.has(name), `${name} is read by the server`)
    }
    assert.isAbove(readme.names.size, 20)
  })

  it("every variable the README documents is read by the server", () => {
    const unread = [...readme.names].filter((name) => !scan.names.has(name)).sort()
    assert.deepStrictEqual(unread, [], "documented in README.md but never read")
  })

  it("every variable the server reads is documented in the README", () => {
    const undocumented = [...scan.names].filter((name) => !documented(name) && !notRead.includes(name)).sort()
    assert.deepStrictEqual(undocumented, [], "read by the server but not in README.md's configuration tables")
  })
})
