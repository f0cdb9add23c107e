import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { HttpClient, HttpClientRequest, HttpClientResponse } from "effect/http"
import { Problem, ProblemClient } from "../src/index.js"

/** A client whose every request is answered with `response` (status, content type, body). */
const answering = (status: number, contentType: string, body: string) =>
  HttpClient.make((request) =>
    Effect.succeed(
      HttpClientResponse.fromWeb(request, new Response(body, { status, headers: { "content-type": contentType } }))
    )
  )

const bodyOf = (status: number, contentType: string, body: string) =>
  Effect.gen(function*() {
    const client = ProblemClient.restoreTags(answering(status, contentType, body))
    const response = yield* client.execute(HttpClientRequest.get("http://localhost/x"))
    return { status: response.status, text: yield* response.text }
  })

describe("ProblemClient.restoreTags", () => {
  it.effect("puts back the tag of a documented type, so the kernel's error schema decodes it", () =>
    Effect.gen(function*() {
      const { status, text } = yield* bodyOf(
        404,
        Problem.contentType,
        JSON.stringify({ type: `${Problem.typeBase}not-found`, title: "Not Found", status: 404, detail: "no tenant x" })
      )
      assert.strictEqual(status, 404)
      const decoded = yield* Schema.decodeUnknownEffect(Problem.NotFound)(JSON.parse(text))
      assert.instanceOf(decoded, Problem.NotFound)
      assert.strictEqual(decoded.detail, "no tenant x")
    }))

  it.effect("derives a package's tag from its type name, and the status's tag for about:blank and IANA types", () =>
    Effect.gen(function*() {
      const own = yield* bodyOf(
        422,
        Problem.contentType,
        JSON.stringify({ type: `${Problem.typeBase}pipeline-syntax-error` })
      )
      assert.strictEqual(JSON.parse(own.text)._tag, "PipelineSyntaxError")
      const blank = yield* bodyOf(404, Problem.contentType, JSON.stringify({ type: "about:blank", status: 404 }))
      assert.strictEqual(JSON.parse(blank.text)._tag, Problem.tagOfType(undefined, 404))
      assert.strictEqual(Problem.tagOfType(`${Problem.typeBase}not-found`, 404), "NotFound")
      assert.strictEqual(Problem.tagOfType(Problem.quotaExceededType, 429), Problem.tagOfType(undefined, 429))
    }))

  it.effect("leaves successes, other media types, bodies with a tag and non-JSON bodies as they came", () =>
    Effect.gen(function*() {
      const ok = JSON.stringify({ type: `${Problem.typeBase}not-found` })
      assert.strictEqual((yield* bodyOf(200, Problem.contentType, ok)).text, ok)
      assert.strictEqual((yield* bodyOf(404, "application/json", ok)).text, ok)
      const tagged = JSON.stringify({ _tag: "Mine", type: `${Problem.typeBase}not-found` })
      assert.strictEqual((yield* bodyOf(404, Problem.contentType, tagged)).text, tagged)
      assert.strictEqual((yield* bodyOf(502, Problem.contentType, "<html>")).text, "<html>")
    }))
})
