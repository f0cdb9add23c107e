import { describe } from "@effect/vitest"
import { Services } from "@ouroboros/testkit"
import { Layer } from "effect"
import * as Memory from "../src/TenantStore/Memory.js"
import * as Sql from "../src/TenantStore/Sql.js"
import { contract } from "./contract.js"
import { layerEmbedded, layerPgSchema } from "./layers.js"

contract("TenantStore in memory", Memory.layer)
contract("TenantStore on the embedded database (PGlite)", Sql.layer.pipe(Layer.provide(layerEmbedded)))

describe.runIf(await Services.postgres())("TenantStore on PostgreSQL", () => {
  contract("PostgreSQL", Sql.layer.pipe(Layer.provide(layerPgSchema())))
})
