import { describe } from "@effect/vitest"
import { Services } from "@ouroboros/testkit"
import { contract, sqlStores } from "./contract.js"
import { layerPgSchema } from "./layers.js"

describe.runIf(await Services.postgres())("EventStore on PostgreSQL", () => {
  contract("PostgreSQL", sqlStores(layerPgSchema()), { concurrency: 16, sql: true, parallelConnections: true })
  contract(
    "PostgreSQL, one append per transaction",
    sqlStores(layerPgSchema(), { maxGroupSize: 1, readBatchSize: 3 }),
    { concurrency: 16, sql: true, parallelConnections: true }
  )
})
