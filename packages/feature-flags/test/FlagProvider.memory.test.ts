import { describe } from "@effect/vitest"
import { FeatureFlags } from "../src/index.js"
import { contract } from "./contract.js"

describe("flag providers: memory", () => {
  contract("memory", FeatureFlags.layerMemory(), { source: "memory" })
})
