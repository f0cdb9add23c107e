import { describe } from "@effect/vitest"
import { AuditStore } from "@ouroboros/audit"
import { Layer } from "effect"
import { testStore } from "./contract.js"

describe("AuditLog in memory", () => {
  testStore("memory", Layer.empty, AuditStore.layerMemory, { sql: false, concurrency: 16 })
})
