import { describe } from "@effect/vitest"
import { Checkpoints, EventStore } from "@ouroboros/event-store"
import { Layer } from "effect"
import { contract } from "./contract.js"

describe("EventStore in memory", () => {
  contract(
    "memory",
    Layer.mergeAll(EventStore.layerMemory({ readBatchSize: 2 }), Checkpoints.layerMemory),
    { concurrency: 16, sql: false, parallelConnections: false }
  )
})
