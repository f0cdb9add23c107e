/**
 * A TCP port for a server that a test starts in another process, chosen so that nothing else on the machine is handed
 * the same port before that server binds it.
 *
 * The usual trick (bind port 0, read the port, close, pass it on) leaves a window: the port the kernel picked lies in
 * its ephemeral range, and until the child binds it the kernel may give it to any other socket, the outgoing connection
 * of another test or another test's port 0. CI saw exactly that (`EADDRINUSE` on a port another test was using).
 * {@link freePort} picks at random below the kernel's ephemeral range instead, where the kernel assigns nothing of its
 * own accord, and checks that the port is free on 127.0.0.1 and on every interface before returning it.
 *
 * @since 0.1.0
 */
import * as Fs from "node:fs"
import * as Net from "node:net"

/** The lowest port of the range, above the well-known and the commonly configured ones. */
const floor = 20_000

/**
 * The first port of the kernel's ephemeral range (Linux's `ip_local_port_range`; its default elsewhere).
 */
const ephemeralStart = (): number => {
  try {
    const low = Number(Fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0])
    return Number.isInteger(low) && low > floor + 1_000 ? low : 32_768
  } catch {
    return 32_768
  }
}

const bindable = (port: number, host: string): Promise<boolean> =>
  new Promise((resolve) => {
    const server = Net.createServer()
    server.once("error", () => resolve(false))
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)))
  })

/**
 * Options of {@link freePort}: the range to pick from, `[from, to)`; by default from 20000 to the start of the
 * kernel's ephemeral range.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly from?: number | undefined
  readonly to?: number | undefined
}

/**
 * A port below the kernel's ephemeral range that nothing listens on, neither on 127.0.0.1 nor on every interface.
 * Rejects after 200 ports were taken (a machine where that happens has a bigger problem than this test).
 *
 * @since 0.1.0
 * @category constructors
 */
export const freePort = async (options: Options = {}): Promise<number> => {
  const from = options.from ?? floor
  const to = options.to ?? ephemeralStart()
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from))
    if ((await bindable(port, "127.0.0.1")) && (await bindable(port, "0.0.0.0"))) return port
  }
  throw new Error(`no free port in ${from}-${to - 1} after 200 tries`)
}
