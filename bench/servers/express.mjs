// Peer: express 5 + express-rate-limit serving GET /api/v1/whoami with an API-key check.
import express from "express"
import { rateLimit } from "express-rate-limit"

const keys = new Map([[process.env.BENCH_KEY, {
  tenantId: "bench",
  subject: "key:bench",
  roles: ["writer", "reader"]
}]])
const app = express()
app.use(
  rateLimit({
    windowMs: 60_000,
    limit: 1_000_000_000,
    keyGenerator: (req) => req.get("x-api-key") ?? "anonymous",
    standardHeaders: "draft-8",
    legacyHeaders: false
  })
)
app.get("/api/v1/whoami", (req, res) => {
  const principal = keys.get(req.get("x-api-key"))
  if (principal === undefined) {
    return res.status(401).type("application/problem+json").json({ status: 401, title: "Unauthorized" })
  }
  res.json(principal)
})
const server = app.listen(0, "127.0.0.1", () => console.log(`PORT=${server.address().port}`))
