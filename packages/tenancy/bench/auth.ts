/**
 * Authentication cost: resolutions per second of `TenancyHttp.resolve` (what the global middleware runs once per
 * request) for no credential, an API key whose resolution is cached, an API key resolved from the store each time
 * (a cache miss), an unknown key, an HS256 JWT and an RS256 JWT (keys from a local JWKS endpoint, fetched once);
 * then the same over HTTP with autocannon against a minimal `HttpRouter.serve` app with `TenancyHttp.layer` (the
 * global router middleware), beside the same app without it.
 *
 * Scenarios run in paired, alternating rounds (the order flips every round) and report the median and the spread
 * (min–max) over the rounds.
 *
 *   cd /work/main && npx tsx packages/tenancy/bench/auth.ts [--rounds 5] [--millis 300] [--http-seconds 2] [--no-http]
 */
import { NodeHttpServer } from "@effect/platform-node"
import autocannon from "autocannon"
import { Effect, Layer, ManagedRuntime, Option, Redacted, References } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { exportJWK, generateKeyPair, SignJWT } from "jose"
import * as NodeHttp from "node:http"
import type { AddressInfo } from "node:net"
import { performance } from "node:perf_hooks"
import * as Jwt from "../src/Jwt.js"
import * as TenancyHttp from "../src/TenancyHttp.js"
import * as TenantConfig from "../src/TenantConfig.js"
import * as Tenants from "../src/Tenants.js"
import * as Memory from "../src/TenantStore/Memory.js"

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}
const rounds = Math.max(5, arg("rounds", 5))
const millis = arg("millis", 300)
const httpSeconds = arg("http-seconds", 2)
const withHttp = !process.argv.includes("--no-http")

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
const report = (title: string, results: Map<string, Array<number>>, unit: string, perOp = false) => {
  console.log(`\n${title} (${rounds} paired rounds, median and min–max)`)
  const base = median(results.get("none") ?? [0])
  for (const [name, xs] of results) {
    const m = median(xs)
    const ratio = perOp
      ? `  ${(1e6 / m).toFixed(2)} µs each`
      : name === "none" || base === 0
      ? ""
      : `  ${(m / base * 100).toFixed(1)}% of none`
    console.log(
      `  ${name.padEnd(16)} ${fmt(m).padStart(12)} ${unit}   [${fmt(Math.min(...xs))} – ${
        fmt(Math.max(...xs))
      }]${ratio}`
    )
  }
}

// A JWKS endpoint serving one RS256 key.
const rsa = await generateKeyPair("RS256")
const jwk = { ...(await exportJWK(rsa.publicKey)), kid: "bench", alg: "RS256", use: "sig" }
const jwksServer = NodeHttp.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/json" })
  res.end(JSON.stringify({ keys: [jwk] }))
})
await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve))
const jwksUrl = new URL(`http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`)
const secret = "a-benchmark-secret-of-32-bytes-or-more"

const now = Math.floor(Date.now() / 1000)
const claims = { tenant_id: "acme", roles: ["writer", "reader"] }
const hsToken = await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("user-1").setIssuedAt(now)
  .setExpirationTime(now + 3600).sign(new TextEncoder().encode(secret))
const rsToken = await new SignJWT(claims).setProtectedHeader({ alg: "RS256", kid: "bench" }).setSubject("user-1")
  .setIssuedAt(now).setExpirationTime(now + 3600).sign(rsa.privateKey)

const bootstrap = { ...TenantConfig.empty, tenants: [{ id: "acme" as never }] } satisfies TenantConfig.Bootstrap

// Two services: one with the default cache, one whose cache keeps nothing (every key resolution reads the store).
const build = (options: { readonly jwt: Jwt.Options; readonly cacheTtlMillis?: number }) =>
  Effect.runPromise(
    Tenants.make({
      bootstrap,
      ...(options.cacheTtlMillis !== undefined ? { cacheTtlMillis: options.cacheTtlMillis } : {})
    })
      .pipe(
        Effect.provide(Layer.mergeAll(Memory.layer, Jwt.layer(options.jwt))),
        Effect.scoped
      )
  )
const hsTenants = await build({ jwt: { secret: Redacted.make(secret) } })
const rsTenants = await build({ jwt: { jwksUrl } })
const missTenants = await build({ jwt: {}, cacheTtlMillis: 0 })
const apiKey = (await Effect.runPromise(hsTenants.keys.create("acme" as never))).key
const missKey = (await Effect.runPromise(missTenants.keys.create("acme" as never))).key

const requestWith = (headers: Record<string, string>) =>
  HttpServerRequest.fromWeb(new Request("http://localhost/api/v1/whoami", { headers }))

type Scenario = { readonly tenants: Tenants.Tenants["Service"]; readonly request: HttpServerRequest.HttpServerRequest }
const scenarios: Record<string, Scenario> = {
  "none": { tenants: hsTenants, request: requestWith({}) },
  "api-key (hit)": { tenants: hsTenants, request: requestWith({ "x-api-key": apiKey }) },
  "api-key (miss)": { tenants: missTenants, request: requestWith({ "x-api-key": missKey }) },
  "unknown key": { tenants: hsTenants, request: requestWith({ "x-api-key": "unknown-key-0123456789abcdef" }) },
  "jwt HS256": { tenants: hsTenants, request: requestWith({ authorization: `Bearer ${hsToken}` }) },
  "jwt RS256": { tenants: rsTenants, request: requestWith({ authorization: `Bearer ${rsToken}` }) }
}

// Sanity: each scenario resolves as expected before it is timed.
for (const [name, s] of Object.entries(scenarios)) {
  const outcome = await Effect.runPromise(TenancyHttp.resolve(s.tenants, s.request))
  const expected = name === "none" ? "Anonymous" : name === "unknown key" ? "Rejected" : "Authenticated"
  if (outcome._tag !== expected) throw new Error(`${name}: ${outcome._tag}, expected ${expected}`)
}

// Runs resolutions back to back for `millis` in one Effect (batches of 256 between clock reads).
const measure = (s: Scenario) =>
  Effect.runPromise(Effect.gen(function*() {
    const start = performance.now()
    let n = 0
    while (performance.now() - start < millis) {
      for (let i = 0; i < 256; i++) yield* TenancyHttp.resolve(s.tenants, s.request)
      n += 256
    }
    return n / ((performance.now() - start) / 1000)
  }))

const names = Object.keys(scenarios)
const inProcess = new Map(names.map((n) => [n, [] as Array<number>]))
for (const name of names) await measure(scenarios[name]!) // warm-up
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? names : [...names].reverse()
  for (const name of order) inProcess.get(name)!.push(await measure(scenarios[name]!))
}
report("Resolutions per second, in process (TenancyHttp.resolve)", inProcess, "/s", true)

if (withHttp) {
  // A minimal server: one route that answers with the principal's tenant, behind the middleware.
  const route = HttpRouter.add(
    "GET",
    "/api/v1/whoami",
    Effect.map(TenancyHttp.currentPrincipal, (p) =>
      HttpServerResponse.text(Option.match(p, {
        onNone: () => "anonymous",
        onSome: (principal) => principal.tenantId
      })))
  )
  // The middleware is installed as a global router middleware (`TenancyHttp.layer`), as the server does: a middleware
  // given to `HttpRouter.serve` would take the platform off its single-frame fast path, a cost that is not ours.
  const serve = async (tenants: Tenants.Tenants["Service"], authenticate: boolean) => {
    let server: NodeHttp.Server | undefined
    const app = authenticate
      ? route.pipe(Layer.provide(TenancyHttp.layer), Layer.provide(Layer.succeed(Tenants.Tenants, tenants)))
      : route
    const runtime = ManagedRuntime.make(
      HttpRouter.serve(app, { disableLogger: true, disableListenLog: true }).pipe(
        Layer.provide(
          Layer.orDie(NodeHttpServer.layer(() => (server = NodeHttp.createServer()), { port: 0, host: "127.0.0.1" }))
        ),
        Layer.provide(Layer.succeed(References.MinimumLogLevel, "Warn"))
      )
    )
    await runtime.runPromise(Effect.void)
    return { port: (server!.address() as AddressInfo).port, stop: () => runtime.dispose() }
  }
  const http: Record<string, { tenants: Tenants.Tenants["Service"]; headers: Record<string, string>; auth: boolean }> =
    {
      "none": { tenants: hsTenants, headers: {}, auth: false },
      "middleware only": { tenants: hsTenants, headers: {}, auth: true },
      "api-key (hit)": { tenants: hsTenants, headers: { "x-api-key": apiKey }, auth: true },
      "jwt HS256": { tenants: hsTenants, headers: { authorization: `Bearer ${hsToken}` }, auth: true },
      "jwt RS256": { tenants: rsTenants, headers: { authorization: `Bearer ${rsToken}` }, auth: true }
    }
  const servers = new Map<string, { port: number; stop: () => Promise<void> }>()
  for (const [name, s] of Object.entries(http)) servers.set(name, await serve(s.tenants, s.auth))
  const load = (name: string, seconds: number) =>
    autocannon({
      url: `http://127.0.0.1:${servers.get(name)!.port}/api/v1/whoami`,
      connections: 32,
      pipelining: 1,
      duration: seconds,
      headers: http[name]!.headers
    }).then((result) => {
      if (result.non2xx > 0 || result.errors > 0) {
        throw new Error(`${name}: ${result.non2xx} non-2xx, ${result.errors} errors`)
      }
      return result.requests.average
    })
  const httpNames = Object.keys(http)
  for (const name of httpNames) await load(name, 1) // warm-up
  const overHttp = new Map(httpNames.map((n) => [n, [] as Array<number>]))
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? httpNames : [...httpNames].reverse()
    for (const name of order) overHttp.get(name)!.push(await load(name, httpSeconds))
  }
  report(`Requests per second over HTTP (autocannon, 32 connections, ${httpSeconds} s per run)`, overHttp, "req/s")
  for (const server of servers.values()) await server.stop()
}
jwksServer.close()
