/**
 * Changes that do not fit their neighbours must not compile. `tsc -b packages/versioning` checks this file: each
 * `@ts-expect-error` fails the build if the line below it compiles. The functions are never called.
 */
import { Problem } from "@ouroboros/kernel"
import { Effect } from "effect"
import { VersionChange, VersionedApi } from "../src/index.js"
import { ApiV1, ApiV2, ApiV3, DocumentNotFound, Envelopes, LabelsAndRevisions } from "./fixtures/Documents.js"

export const missingPayloadMigration = () => {
  // v1's ingest body has `text`, v2's has `content`: the payload migration is required.
  const incomplete = VersionChange.make(ApiV1, ApiV2, "incomplete")
    .endpoint("documents", "ingest", { success: (v2) => ({ id: v2.data.id, text: v2.data.content, metadata: {} }) })
    .endpoint("documents", "get", {
      success: (v2) => ({ id: v2.data.id, text: v2.data.content, metadata: v2.data.metadata }),
      error: (e: DocumentNotFound) => new Problem.NotFound({ detail: e.detail })
    })
    .removed("documents", "count", () => Effect.succeed({ count: 0 }))
  return VersionedApi.make("v3", ApiV3)
    .previous("v2", ApiV2, LabelsAndRevisions)
    // @ts-expect-error missing version changes: "documents.ingest.payload"
    .previous("v1", ApiV1, incomplete)
}

export const missingErrorMigration = () => {
  // v2's missing document is `DocumentNotFound`, v1's kernel's `NotFound`: the error migration is required.
  const incomplete = VersionChange.make(ApiV1, ApiV2, "incomplete")
    .endpoint("documents", "ingest", {
      payload: (v1) => ({ content: v1.text }),
      success: (v2) => ({ id: v2.data.id, text: v2.data.content, metadata: {} })
    })
    .endpoint("documents", "get", { success: (v2) => ({ id: v2.data.id, text: v2.data.content, metadata: {} }) })
    .removed("documents", "count", () => Effect.succeed({ count: 0 }))
  return VersionedApi.make("v3", ApiV3)
    .previous("v2", ApiV2, LabelsAndRevisions)
    // @ts-expect-error missing version changes: "documents.get.error"
    .previous("v1", ApiV1, incomplete)
}

export const missingRemoval = () => {
  // v1's `count` is not in v2: the change must declare it removed and serve it.
  const incomplete = VersionChange.make(ApiV1, ApiV2, "incomplete")
    .endpoint("documents", "ingest", {
      payload: (v1) => ({ content: v1.text }),
      success: (v2) => ({ id: v2.data.id, text: v2.data.content, metadata: {} })
    })
    .endpoint("documents", "get", {
      success: (v2) => ({ id: v2.data.id, text: v2.data.content, metadata: {} }),
      error: (e: DocumentNotFound) => new Problem.NotFound({ detail: e.detail })
    })
  return VersionedApi.make("v3", ApiV3)
    .previous("v2", ApiV2, LabelsAndRevisions)
    // @ts-expect-error missing version changes: "documents.count.removed"
    .previous("v1", ApiV1, incomplete)
}

export const wrongMigrationTypes = () => [
  VersionChange.make(ApiV1, ApiV2, "wrong").endpoint("documents", "ingest", {
    // @ts-expect-error v2's body has no `text`: the migration must produce v2's `content`
    payload: (v1) => ({ text: v1.text })
  }),
  VersionChange.make(ApiV1, ApiV2, "wrong").endpoint("documents", "get", {
    // @ts-expect-error the answer must be migrated to v1's shape, not left in v2's envelope
    success: (v2) => v2
  }),
  VersionChange.make(ApiV1, ApiV2, "wrong").endpoint("documents", "ingest", {
    // @ts-expect-error a migration written for another version's schema
    payload: (v1: { readonly content: string }) => ({ content: v1.content })
  })
]

export const notNeighbours = () =>
  VersionedApi.make("v3", ApiV3)
    .previous("v2", ApiV2, LabelsAndRevisions)
    // @ts-expect-error a change from v2 to v3 is not a change from v1 to v2
    .previous("v1", ApiV1, LabelsAndRevisions)

export const unknownEndpoints = () => [
  // @ts-expect-error `count` is not in v2: it can only be declared removed
  VersionChange.make(ApiV1, ApiV2, "wrong").endpoint("documents", "count", {}),
  // @ts-expect-error `get` is in v2: it is not removed
  VersionChange.make(ApiV1, ApiV2, "wrong").removed("documents", "get", () => Effect.die("unused")),
  // @ts-expect-error no group `pipelines`
  VersionChange.make(ApiV1, ApiV2, "wrong").endpoint("pipelines", "ingest", {})
]

// The change the fixture uses does compile, and covers exactly what v1 needs.
export const complete = () =>
  VersionedApi.make("v3", ApiV3).previous("v2", ApiV2, LabelsAndRevisions).previous("v1", ApiV1, Envelopes)
