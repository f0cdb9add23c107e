/**
 * The documents of docs/ against the code: every relative link resolves (to a file, and to a heading when it names
 * one); every repository path named exists; every HTTP endpoint named is served by the built server (read from its
 * OpenAPI documents, or answered when asked), or is declared by a package and listed below as not yet wired; every
 * environment variable named is read by the source (the scanner of `deploy/test/lib/config-keys.ts`), by a package
 * not yet wired, or by tooling; every `ouroboros` command and flag named exists (the CLI's help); every metric and
 * health check named is defined in the source; the log lines quoted are the code's; what the documents say is not
 * done yet is still not done (so that the documents are updated when it is); and docs/nfr.md is what
 * `docs/nfr.ts` renders from the benchmarks' results files.
 *
 * It needs the built server (`node apps/server/build.mjs`): it starts `apps/server/dist/main.js` on a free port with
 * a fresh data directory, as test/Contract.test.ts does, and runs `apps/server/dist/cli.js --help`.
 *
 *   npx vitest run docs/test
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import * as Nfr from "../nfr.js"
import * as Code from "./lib/code.js"
import * as Md from "./lib/markdown.js"

const repo = Code.repo
const docsDir = Path.join(repo, "docs")
const docs = Fs.readdirSync(docsDir)
  .filter((name) => name.endsWith(".md"))
  .sort()
  .map((name) => Md.parseDoc(`docs/${name}`, Fs.readFileSync(Path.join(docsDir, name), "utf8")))
const allText = docs.map((d) => d.text).join("\n")

/**
 * Endpoints the documents describe as not yet wired: declared by a package, not served by the server. When the server
 * serves one, this test fails: update the documents' "not yet wired" notes, then remove the entry.
 */
const notYetWired: ReadonlyArray<string> = []

/** Metrics the documents say do not exist yet (no RED metrics). When one appears, update the documents. */
const absentMetrics: ReadonlyArray<string> = []

const read = (path: string) => {
  const file = Path.join(repo, path)
  return Fs.existsSync(file) ? Fs.readFileSync(file, "utf8") : ""
}
const sourceUnder = (dir: string) =>
  Code.sourceFiles().filter((f) => f.startsWith(Path.join(repo, dir))).map((f) => Fs.readFileSync(f, "utf8")).join("\n")

/** Log lines and messages the documents quote, and the source text each comes from. */
const quoted: ReadonlyArray<{ readonly doc: string; readonly file: string; readonly source: string }> = [
  {
    doc: "circuit breaker ollama: closed -> open",
    file: "packages/circuit-breaker/src/CircuitBreaker.ts",
    source: "`circuit breaker ${change.name}: ${change.from} -> ${change.to}`"
  },
  {
    doc: "circuit breaker: cannot subscribe to Redis",
    file: "packages/circuit-breaker/src/CircuitBreaker/Redis.ts",
    source: "\"circuit breaker: cannot subscribe to Redis\""
  },
  {
    doc: "Redis unavailable, using local state",
    file: "packages/circuit-breaker/src/CircuitBreaker/Redis.ts",
    source: ": Redis unavailable, using local state`"
  },
  {
    doc: "the embedding model is unavailable",
    file: "packages/retrieval/src/RetrievalError.ts",
    source: "\"the embedding model is unavailable\""
  },
  {
    doc: "the language model failed; answering extractively",
    file: "packages/retrieval/src/Retrieval.ts",
    source: "\"the language model failed; answering extractively\""
  },
  {
    doc: "vector projection failed; it retries",
    file: "packages/retrieval/src/Retrieval.ts",
    source: "\"vector projection failed; it retries\""
  },
  {
    doc: "vector projection catching up",
    file: "packages/retrieval/src/Retrieval.ts",
    source: "\"vector projection catching up\""
  },
  {
    doc: "was built with the embedder",
    file: "packages/retrieval/src/Retrieval.ts",
    source: "was built with the embedder"
  },
  {
    doc: "Rate-limit store unavailable, failing open",
    file: "packages/rate-limit/src/RateLimiter.ts",
    source: "`Rate-limit store unavailable, failing ${options.mode}"
  },
  {
    doc: "Rate-limit store recovered",
    file: "packages/rate-limit/src/RateLimiter.ts",
    source: "\"Rate-limit store recovered\""
  },
  {
    doc: "the rate-limit store is unreachable",
    file: "apps/server/src/Limits.ts",
    source: "\"the rate-limit store is unreachable\""
  },
  { doc: "Health check fail", file: "packages/health/src/HealthCheck.ts", source: "`Health check ${result.status}`" },
  {
    doc: "Health check passes again",
    file: "packages/health/src/HealthCheck.ts",
    source: "\"Health check passes again\""
  },
  {
    doc: "Unhandled failure while serving a request",
    file: "packages/kernel/src/ProblemHttp.ts",
    source: "\"Unhandled failure while serving a request\""
  },
  { doc: "scheduled backup failed", file: "packages/backup/src/Scheduler.ts", source: "\"scheduled backup failed\"" },
  { doc: "scheduled backup done", file: "packages/backup/src/Scheduler.ts", source: "\"scheduled backup done\"" },
  {
    doc: "scheduled backup skipped: another replica runs it",
    file: "packages/backup/src/Scheduler.ts",
    source: "\"scheduled backup skipped: another replica runs it\""
  },
  {
    doc: "backup verification failed",
    file: "packages/backup/src/Backup.ts",
    source: "\"backup verification failed\""
  },
  { doc: "backup created", file: "packages/backup/src/Backup.ts", source: "\"backup created\"" },
  { doc: "restore started", file: "packages/backup/src/Backup.ts", source: "\"restore started\"" },
  { doc: "restore finished", file: "packages/backup/src/Backup.ts", source: "\"restore finished\"" },
  {
    doc: "Startup failed: cannot connect to DATABASE_URL",
    file: "packages/shutdown/src/Shutdown.ts",
    source: "`Startup failed: ${"
  },
  {
    doc: "cannot connect to DATABASE_URL (",
    file: "packages/sql/src/Database.ts",
    source: "`cannot connect to DATABASE_URL (${"
  },
  { doc: "ran N migration(s)", file: "packages/sql/src/Migrations.ts", source: "`ran ${ran.length} migration(s)`" },
  {
    doc: "kill switch pulled on ollama by",
    file: "packages/feature-flags/src/FeatureFlags.ts",
    source: "`kill switch pulled on ${key} by ${by.actor}: ${request.reason}`"
  },
  {
    doc: "the audit log is inconsistent:",
    file: "packages/audit/src/AuditLog.ts",
    source: "`the audit log is inconsistent: ${inconsistency}; it will not sign checkpoints. Run verify.`"
  },
  {
    doc: "the last audit checkpoint was signed by another key or for another origin (a rotation?)",
    file: "packages/audit/src/AuditLog.ts",
    source: "\"the last audit checkpoint was signed by another key or for another origin (a rotation?); \""
  },
  {
    doc: "credentials cannot be checked right now",
    file: "packages/tenancy/src/TenancyHttp.ts",
    source: "\"credentials cannot be checked right now\""
  },
  {
    doc: "credentials could not be checked",
    file: "packages/tenancy/src/TenancyHttp.ts",
    source: "\"credentials could not be checked\""
  },
  {
    doc: "keeping the last good flags: ",
    file: "packages/feature-flags/src/FlagProvider/Sql.ts",
    source: "`keeping the last good flags: ${detail}`"
  },
  {
    doc: "the documents quota of tenant acme is used up (1 of 1)",
    file: "packages/tenancy/src/QuotasHttp.ts",
    source: "`the ${error.quota} quota of tenant ${error.tenantId} is used up (${error.usage} of ${error.limit})`"
  },
  {
    doc: "kill switch pulled on ollama by admin:",
    file: "packages/feature-flags/src/FeatureFlags.ts",
    source: "`kill switch pulled on ${key} by ${by.actor}: ${request.reason}`"
  },
  { doc: "tenant data erased", file: "apps/server/src/Tenancy.ts", source: "\"tenant data erased\"" },
  { doc: "tenant vectors moved", file: "apps/server/src/Tenancy.ts", source: "\"tenant vectors moved\"" },
  {
    doc: "cannot start: PORT: must be a port number between 0 and 65535",
    file: "apps/server/src/ServerConfig.ts",
    source: "\"must be a port number between 0 and 65535\""
  }
]

/**
 * What the documents say the code does not do yet. Each is checked against the source (or the running server): when
 * one no longer holds, this test fails, naming the documents to update.
 */
const gaps: ReadonlyArray<{ readonly docs: string; readonly claim: string; readonly holds: () => boolean }> = [
  {
    docs: "deployment.md (Configuration)",
    claim: "the server uses EventStore.layer, so no variable sets MAX_GROUP_SIZE / READ_BATCH_SIZE",
    holds: () => !sourceUnder("apps/server/src").includes("EventStore.layerConfig")
  }
]

let server: Code.RunningServer | undefined
let served: Array<Code.Route> = []
let declared: Array<Code.Route> = []

beforeAll(async () => {
  declared = Code.declaredRoutes()
  server = await Code.startServer()
  served = await Code.servedRoutes(server.url)
}, 120_000)

afterAll(async () => {
  await server?.stop()
}, 30_000)

describe("links", () => {
  it("every relative link resolves to a file, and to a heading when it names one", () => {
    const problems: Array<string> = []
    for (const doc of docs) {
      for (const target of Md.links(doc)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue
        const [file, anchor] = target.split("#") as [string, string | undefined]
        const path = file === ""
          ? Path.join(repo, doc.file)
          : Path.resolve(Path.join(repo, Path.dirname(doc.file)), file)
        if (!Fs.existsSync(path)) {
          problems.push(`${doc.file}: ${target}: no such file`)
          continue
        }
        if (anchor !== undefined && path.endsWith(".md")) {
          const target_ = Md.parseDoc(Path.relative(repo, path), Fs.readFileSync(path, "utf8"))
          if (!Md.anchors(target_).has(anchor)) problems.push(`${doc.file}: ${target}: no heading #${anchor}`)
        }
      }
    }
    assert.deepStrictEqual(problems, [])
  })
})

describe("paths", () => {
  it("every repository path named exists", () => {
    const problems = docs.flatMap((doc) =>
      Md.repoPaths(doc).filter((p) => !Fs.existsSync(Path.join(repo, p))).map((p) => `${doc.file}: ${p}`)
    )
    assert.deepStrictEqual(problems, [])
  })
})

describe("endpoints", () => {
  const covers = (route: Code.Route, e: Md.NamedEndpoint) =>
    (e.method === undefined || e.method === route.method) && Md.pathMatches(e.path, route.path)

  it("every endpoint named is served, or declared by a package and listed as not yet wired", async () => {
    assert.isAbove(served.length, 10, "the server's OpenAPI document lists its routes")
    const named = docs.flatMap(Md.endpoints)
    assert.isAbove(named.length, 20, "the documents name endpoints")
    const problems: Array<string> = []
    const probed = new Map<string, boolean>()
    for (const e of named) {
      if (served.some((r) => covers(r, e))) continue
      if (e.method === undefined || e.method === "GET") {
        let answers = probed.get(e.path)
        if (answers === undefined) {
          answers = await Code.answersGet(server!.url, e.path)
          probed.set(e.path, answers)
        }
        if (answers) continue
      }
      const pending = notYetWired.some((p) => Md.pathMatches(p, e.path) || Md.pathMatches(e.path, p))
      const isDeclared = declared.some((r) => covers(r, e))
      if (!isDeclared) {
        problems.push(`${e.where}: ${e.method ?? ""} ${e.path}: neither served nor declared by a package`)
      } else if (!pending) {
        problems.push(`${e.where}: ${e.method ?? ""} ${e.path}: declared but not served; not listed as not yet wired`)
      }
    }
    assert.deepStrictEqual(problems, [])
  }, 60_000)

  it("what is listed as not yet wired is still not served (else: update the documents and the list)", async () => {
    const nowServed: Array<string> = []
    for (const prefix of notYetWired) {
      if (served.some((r) => Md.pathMatches(prefix, r.path))) nowServed.push(prefix)
      else if (await Code.answersGet(server!.url, prefix)) nowServed.push(prefix)
    }
    assert.deepStrictEqual(nowServed, [], "served now: update the documents' \"not yet wired\" notes, then notYetWired")
  }, 60_000)
})

describe("environment variables", () => {
  it("every variable named is read by the server, by a package not yet wired, or by tooling", () => {
    const server_ = Code.serverScan()
    const packages = Code.packagesScan()
    const tooling = Code.toolingNames()
    const literal = Code.literalNames()
    const known = new Set([...server_.names, ...packages.names, ...literal, ...tooling])
    const problems: Array<string> = []
    const onlyPackages: Array<string> = []
    for (const doc of docs) {
      const { names, prefixes } = Md.envNames(doc)
      for (const name of names) {
        if (!known.has(name)) problems.push(`${doc.file}: ${name}`)
        else if (!server_.names.has(name) && !tooling.has(name)) onlyPackages.push(name)
      }
      for (const prefix of prefixes) {
        if (![...known].some((n) => n.startsWith(prefix))) problems.push(`${doc.file}: ${prefix}*`)
      }
    }
    if (onlyPackages.length > 0) {
      console.info(
        `named in docs/, read only by packages the server does not import yet: ${
          [...new Set(onlyPackages)].sort().join(" ")
        }`
      )
    }
    assert.deepStrictEqual(problems, [])
  }, 60_000)
})

describe("the command line", () => {
  it("every ouroboros command and flag named exists", async () => {
    const calls = docs.flatMap(Md.cliCalls)
    assert.isAbove(calls.length, 3, "the documents show the CLI")
    // The command tree as far as the documents go: each level's help lists its subcommands.
    const helps = new Map<string, Promise<Code.CliHelp>>()
    const help = (words: ReadonlyArray<string>) => {
      const key = words.join(" ")
      let found = helps.get(key)
      if (found === undefined) helps.set(key, found = Code.cliHelp(words))
      return found
    }
    const problems: Array<string> = []
    await Promise.all(calls.map(async (call) => {
      const path: Array<string> = []
      for (const word of call.words) {
        if (!(await help(path)).subcommands.includes(word)) break
        path.push(word)
      }
      const leaf = await help(path)
      if (path.length === 0 || leaf.status !== 0) {
        problems.push(`${call.where}: ouroboros ${call.words.join(" ")}: no such command`)
        return
      }
      const rest = call.words.slice(path.length)
      if (leaf.subcommands.length > 0 && rest.length > 0) {
        problems.push(`${call.where}: ouroboros ${path.join(" ")} has no subcommand ${rest[0]}`)
      }
      for (const flag of call.flags) {
        if (!leaf.flags.includes(flag)) {
          problems.push(`${call.where}: ouroboros ${path.join(" ")} ${flag}: no such flag`)
        }
      }
    }))
    assert.deepStrictEqual(problems, [])
  }, 180_000)

  it("every npm script named exists", () => {
    const scripts = Object.keys((JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts)
    const named = [...allText.matchAll(/\bnpm (?:run (\S+)|(start|test)\b)/g)].map((m) => m[1] ?? m[2]!)
    assert.deepStrictEqual(named.filter((n) => !scripts.includes(n)), [])
  })
})

describe("names the code defines", () => {
  // The server's source and the packages' (the console's web code only names what it expects to find).
  const source = Code.sourceFiles()
    .filter((f) => !f.startsWith(Path.join(repo, "apps/console")))
    .map((f) => Fs.readFileSync(f, "utf8"))
    .join("\n")

  it("every metric named is defined, and the ones said to be missing still are", () => {
    const named = docs.flatMap(Md.metricNames)
    assert.isAbove(named.length, 5)
    const missing = named.filter((n) => !absentMetrics.includes(n) && !source.includes(`"${n}"`))
    assert.deepStrictEqual(missing, [])
    const appeared = absentMetrics.filter((n) => source.includes(`"${n}"`))
    assert.deepStrictEqual(appeared, [], "defined now: update the documents that say there are no RED metrics")
  })

  it("every health check named is registered by the source", () => {
    const named = [...new Set(docs.flatMap(Md.healthChecks))]
    assert.isAbove(named.length, 3)
    assert.deepStrictEqual(named.filter((n) => !source.includes(`"${n}"`)), [])
  })

  it("the log lines and messages quoted are the code's", () => {
    const problems: Array<string> = []
    for (const q of quoted) {
      if (!allText.includes(q.doc)) problems.push(`no document quotes "${q.doc}" any more: remove it from this list`)
      if (!read(q.file).includes(q.source)) problems.push(`${q.file} no longer says ${q.source} (quoted as "${q.doc}")`)
    }
    assert.deepStrictEqual(problems, [])
  })
})

describe("known gaps", () => {
  it("what the documents say is not done yet is still not done", () => {
    const done = gaps.filter((g) => !g.holds()).map((g) => `${g.claim}: no longer true, update ${g.docs}`)
    assert.deepStrictEqual(done, [])
  })
})

describe("docs/nfr.md", () => {
  it("is what docs/nfr.ts renders from the results files", () => {
    const page = read("docs/nfr.md")
    assert.strictEqual(page, Nfr.render(page, Nfr.loadResults()), "out of date: run `npx tsx docs/nfr.ts`")
  })

  it("has a figures block for every feature, and the results files are valid", () => {
    const page = read("docs/nfr.md")
    for (const feature of Nfr.features) assert.include(page, `<!-- nfr:figures ${feature} -->`)
    const sources = Nfr.loadResults()
    assert.isAbove(sources.length, 5)
  })
})
