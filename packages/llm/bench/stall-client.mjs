// The client of stall.ts, in a process of its own: GET /health/live every 5 ms (open loop), each latency counted from
// when the request was due. Controlled over IPC: "ping" → "ready", "start" → "started", "stop" → the samples.
import * as Http from "node:http"

const port = Number(process.argv[2])
const agent = new Http.Agent({ keepAlive: true, maxSockets: Infinity })
const now = () => performance.timeOrigin + performance.now()
let samples = []
let timer

const request = (due) => {
  const req = Http.get({ host: "127.0.0.1", port, path: "/health/live", agent }, (res) => {
    res.resume()
    res.on("end", () => samples.push({ due, latency: now() - due }))
  })
  req.on("error", () => samples.push({ due, latency: Number.POSITIVE_INFINITY }))
}

process.on("message", (message) => {
  if (message === "ping") process.send("ready")
  else if (message === "start") {
    samples = []
    let due = now()
    // Every 5 ms on schedule; a late tick sends what was due (open loop), each with its own due time.
    timer = setInterval(() => {
      const at = now()
      while (due <= at) {
        request(due)
        due += 5
      }
    }, 1)
    process.send("started")
  } else if (message === "stop") {
    clearInterval(timer)
    // Let the last answers arrive.
    setTimeout(() => process.send(samples), 200)
  }
})
