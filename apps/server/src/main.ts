/**
 * The server process's entry (`dist/main.js`): starts the embedded database (lock, PGlite in its worker thread)
 * before anything else is loaded, then loads the server, whose `Database` layer adopts it. PGlite opens its data
 * directory while the main thread reads and compiles the rest of the program. Kept tiny on purpose: the bundle is
 * split (build.mjs), so this file is a few hundred bytes and `Program.js` is a chunk of its own.
 *
 * Node's compile cache is turned on before the rest is loaded, so a restart reuses the compiled code of the last start
 * (in `NODE_COMPILE_CACHE`, else Node's directory under the system's temporary directory; `NODE_DISABLE_COMPILE_CACHE`
 * turns it off). Where the directory cannot be written, Node says so in the result and the server starts as before.
 *
 * @since 0.1.0
 */
import { startEmbeddedEarly } from "@ouroboros/sql/Early"
import * as Module from "node:module"

Module.enableCompileCache?.()
startEmbeddedEarly()
const { main } = await import("./Program.js")
main()
