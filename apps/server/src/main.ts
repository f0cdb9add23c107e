/**
 * The server process's entry (`dist/main.js`): starts the embedded database (lock, PGlite in its worker thread)
 * before anything else is loaded, then loads the server, whose `Database` layer adopts it. PGlite opens its data
 * directory while the main thread reads and compiles the rest of the program. Kept tiny on purpose: the bundle is
 * split (build.mjs), so this file is a few hundred bytes and `Program.js` is a chunk of its own.
 *
 * @since 0.1.0
 */
import { startEmbeddedEarly } from "@ouroboros/sql/Early"

startEmbeddedEarly()
const { main } = await import("./Program.js")
main()
