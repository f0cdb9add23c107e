import { describe } from "@effect/vitest"
import { Services } from "@ouroboros/testkit"
import { Layer } from "effect"
import { testStore } from "./contract.js"
import { pgStore } from "./layers.js"

describe.runIf(await Services.postgres())("AuditLog on PostgreSQL", () => {
  testStore("PostgreSQL", Layer.empty, pgStore(), { sql: true, concurrency: 16 })
})
