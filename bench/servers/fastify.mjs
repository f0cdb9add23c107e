// Peer: fastify 5 + @fastify/rate-limit serving GET /api/v1/whoami with an API-key check.
import rateLimit from "@fastify/rate-limit"
import Fastify from "fastify"

const keys = new Map([[process.env.BENCH_KEY, {
  tenantId: "bench",
  subject: "key:bench",
  roles: ["writer", "reader"]
}]])
const app = Fastify({ logger: false })
await app.register(rateLimit, {
  max: 1_000_000_000,
  timeWindow: 60_000,
  enableDraftSpec: true,
  keyGenerator: (req) => req.headers["x-api-key"] ?? "anonymous"
})
app.get("/api/v1/whoami", async (req, reply) => {
  const principal = keys.get(req.headers["x-api-key"])
  if (principal === undefined) {
    return reply.code(401).type("application/problem+json").send({ status: 401, title: "Unauthorized" })
  }
  return principal
})
const address = await app.listen({ port: 0, host: "127.0.0.1" })
console.log(`PORT=${new URL(address).port}`)
