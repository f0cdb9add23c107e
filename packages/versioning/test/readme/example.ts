// The README's example, compiled by `tsc -b` so that it stays true.
import { Effect, Layer } from "effect"
import { VersionChange, VersionedApi, VersioningHttp, VersionPolicy } from "../../src/index.js"
import { ApiV1, ApiV2, Store } from "./api.js" // /api/v1 answers { id, text }, /api/v2 { data: { id, content } }

const Envelopes = VersionChange.make(ApiV1, ApiV2, "Answers are wrapped in { data }; `text` is `content`")
  .endpoint("documents", "get", { success: (v2) => ({ id: v2.data.id, text: v2.data.content }) })
export const Versions = VersionedApi.make("v2", ApiV2).previous("v1", ApiV1, Envelopes)

const DocumentsLive = VersionedApi.group(Versions, "documents", (handlers) =>
  // v2's handlers only
  Effect.map(Effect.service(Store), (store) => handlers.handle("get", ({ params }) => store.get(params.id))))

export const App = Layer.mergeAll(VersionedApi.layer(Versions), VersioningHttp.layerDocs(Versions)).pipe(
  Layer.provide([DocumentsLive, VersioningHttp.layer()]),
  Layer.provide(VersionPolicy.layerConfig(VersionedApi.versions(Versions)))
) // for HttpRouter.serve, with kernel's ProblemHttp.layer
