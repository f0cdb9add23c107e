import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Net from "node:net"
import { freePort } from "../src/Ports.js"

const ephemeralStart = Number(
  Fs.existsSync("/proc/sys/net/ipv4/ip_local_port_range")
    ? Fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]
    : 32_768
)

const listen = (port: number, host: string) =>
  new Promise<Net.Server>((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen({ port, host, exclusive: true }, () => resolve(server))
  })

describe("Ports.freePort", () => {
  it("gives ports below the kernel's ephemeral range that a server can then bind, on 127.0.0.1 and every interface", async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()))
    for (const port of ports) {
      assert.isTrue(port >= 20_000 && port < ephemeralStart, `${port} lies in [20000, ${ephemeralStart})`)
    }
    const server = await listen(ports[0]!, "127.0.0.1")
    await new Promise((resolve) => server.close(resolve))
    const any = await listen(ports[1]!, "0.0.0.0")
    await new Promise((resolve) => any.close(resolve))
  })

  it("never gives a port that something listens on: in a range of 8 with 7 held, the free one every time", async () => {
    // Eight consecutive ports, all bound: seven are held, the eighth is released.
    const hold = async (): Promise<ReadonlyArray<Net.Server>> => {
      const base = await freePort()
      const servers = await Promise.all(
        Array.from({ length: 8 }, (_, i) => listen(base + i, "127.0.0.1").then((s) => s, () => undefined))
      )
      const bound = servers.filter((s) => s !== undefined)
      if (bound.length === 8) return bound
      await Promise.all(bound.map((server) => new Promise((resolve) => server.close(resolve))))
      return hold()
    }
    const servers = await hold()
    const ports = servers.map((server) => (server.address() as Net.AddressInfo).port)
    await new Promise((resolve) => servers[3]!.close(resolve))
    const held = servers.filter((_, i) => i !== 3)
    try {
      for (let i = 0; i < 20; i++) {
        assert.strictEqual(await freePort({ from: ports[0]!, to: ports[0]! + 8 }), ports[3])
      }
    } finally {
      await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))))
    }
  })

  it("rejects when every port of the range is taken", async () => {
    const base = await freePort()
    const server = await listen(base, "127.0.0.1")
    try {
      await freePort({ from: base, to: base + 1 }).then(
        () => assert.fail("expected a rejection"),
        (error) => assert.match(String(error), /no free port/)
      )
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
