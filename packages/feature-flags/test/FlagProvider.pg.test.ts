import { describe } from "@effect/vitest"
import { Services } from "@ouroboros/testkit"
import { Effect, Layer } from "effect"
import { FeatureFlags } from "../src/index.js"
import { contract, replicas, sqlReplicas } from "./contract.js"
import { layerPgClient, layerPgSchema, schemaName } from "./layers.js"

describe.runIf(await Services.postgres())("flag providers: PostgreSQL", () => {
  contract("PostgreSQL", FeatureFlags.layerSql().pipe(Layer.provide(layerPgSchema())), { source: "sql" })

  const twoReplicas = (listen: "auto" | "off") =>
    Effect.suspend(() => {
      const schema = schemaName()
      // Each replica has its own pool, and its own NOTIFY channel per test run so parallel runs do not wake it.
      return sqlReplicas(layerPgSchema(schema), layerPgClient(schema), { listen, channel: schema })
    })

  replicas("two replicas with LISTEN/NOTIFY", twoReplicas("auto"))
  replicas("two replicas, poll only (no LISTEN)", twoReplicas("off"))
})
