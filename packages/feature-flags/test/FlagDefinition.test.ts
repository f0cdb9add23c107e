import { assert, describe, it } from "@effect/vitest"
import { Principal, TenantId } from "@ouroboros/kernel"
import { EvaluationContext, FlagDefinition } from "../src/index.js"

const issues = (result: ReturnType<typeof FlagDefinition.validate>) =>
  result._tag === "Failure" ? result.failure.issues : []

describe("FlagDefinition", () => {
  it("accepts flagd's format: targeting, $evaluators, metadata, a null default variant", () => {
    const result = FlagDefinition.validate({
      $schema: "https://flagd.dev/schema/v0/flags.json",
      metadata: { flagSetId: "ouroboros" },
      flags: {
        rollout: {
          state: "ENABLED",
          variants: { on: true, off: false },
          defaultVariant: null,
          targeting: { if: [{ $ref: "isBeta" }, { fractional: [["on", 10], ["off", 90]] }, null] },
          metadata: { owner: "search" }
        }
      },
      $evaluators: { isBeta: { sem_ver: [{ var: "apiVersion" }, ">=", "2.0.0"] } }
    })
    assert.strictEqual(result._tag, "Success")
  })

  it("refuses what flagd refuses, and says where", () => {
    const badState = FlagDefinition.validate({ flags: { x: { state: "ON", variants: { a: 1 }, defaultVariant: "a" } } })
    assert.isAbove(issues(badState).length, 0)
    const badDefault = FlagDefinition.validate({
      flags: { x: { state: "ENABLED", variants: { a: 1 }, defaultVariant: "b" } }
    })
    assert.include(badDefault._tag === "Failure" ? badDefault.failure.detail : "", "b")
    const mixed = FlagDefinition.validate({
      flags: { x: { state: "ENABLED", variants: { a: 1, b: "1" }, defaultVariant: "a" } }
    })
    assert.deepStrictEqual(issues(mixed).map((i) => i.path), ["/flags/x/variants"])
    const noFlags = FlagDefinition.validate({ flag: {} })
    assert.strictEqual(noFlags._tag, "Failure")
  })

  it("strict refuses a rule that does not compile; lenient loads it with a warning, as flagd does", () => {
    const input = {
      flags: { x: { state: "ENABLED", variants: { a: true, b: false }, defaultVariant: "a", targeting: { nope: [1] } } }
    }
    assert.deepStrictEqual(
      issues(FlagDefinition.validate(input, "strict")).map((i) => i.path).includes("/flags/x/targeting"),
      true
    )
    const lenient = FlagDefinition.validate(input, "lenient")
    assert.strictEqual(lenient._tag, "Success")
    assert.deepStrictEqual(lenient._tag === "Success" ? lenient.success.warnings.map((w) => w.path) : [], [
      "/flags/x/targeting"
    ])
  })

  it("parses JSON and YAML; a syntax error is an issue, not an exception", () => {
    const yaml = FlagDefinition.parse(
      "flags:\n  x:\n    state: ENABLED\n    variants: { a: 1 }\n    defaultVariant: a\n",
      "yaml"
    )
    assert.strictEqual(yaml._tag, "Success")
    const broken = FlagDefinition.parse("flags: [", "yaml")
    assert.include(broken._tag === "Failure" ? broken.failure.detail : "", "not valid YAML")
    const json = FlagDefinition.parse("{", "json")
    assert.include(json._tag === "Failure" ? json.failure.detail : "", "not valid JSON")
    assert.strictEqual(FlagDefinition.formatOf("/etc/flags.YML"), "yaml")
    assert.strictEqual(FlagDefinition.formatOf("flags.flagd.json"), "json")
  })
})

describe("EvaluationContext", () => {
  it("fromPrincipal: the subject is the targeting key; tenant, roles, tier and API version for rules", () => {
    const principal = new Principal.Principal({
      tenantId: TenantId.make("acme"),
      subject: "key:1",
      roles: ["writer", "reader"],
      method: "api-key",
      tier: "premium"
    })
    const flat = EvaluationContext.toOpenFeature(EvaluationContext.fromPrincipal(principal, { apiVersion: "2" }))
    assert.deepStrictEqual(flat, {
      targetingKey: "key:1",
      tenantId: "acme",
      principal: "key:1",
      roles: ["writer", "reader"],
      authMethod: "api-key",
      tier: "premium",
      apiVersion: "2"
    })
  })

  it("the named members cannot be spoofed by attributes", () => {
    const flat = EvaluationContext.toOpenFeature({ attributes: { tenantId: "other", targetingKey: "x", plan: "pro" } })
    assert.deepStrictEqual(flat, { plan: "pro" })
    const merged = EvaluationContext.merge({ tenantId: "acme", attributes: { a: 1 } }, { attributes: { b: 2 } })
    assert.deepStrictEqual(EvaluationContext.toOpenFeature(merged), { a: 1, b: 2, tenantId: "acme" })
  })
})
