import { describe } from "@effect/vitest"
import { testStore } from "./contract.js"
import { embeddedDatabase, embeddedStore } from "./layers.js"

describe("AuditLog on the embedded database (PGlite)", () => {
  testStore("PGlite", embeddedDatabase, embeddedStore, { sql: true, concurrency: 8 })
})
