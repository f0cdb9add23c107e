import { describe } from "@effect/vitest"
import { contract, sqlStores } from "./contract.js"
import { layerEmbedded } from "./layers.js"

describe("EventStore on the embedded database", () => {
  contract("PGlite", sqlStores(layerEmbedded), { concurrency: 8, sql: true, parallelConnections: false })
})
