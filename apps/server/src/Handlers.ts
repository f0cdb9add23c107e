/**
 * The handlers of `@ouroboros/retrieval`'s groups (documents, pipelines, projections) in the server's `Api`.
 *
 * @since 0.1.0
 */
import { PipelinesHttp, RetrievalHttp } from "@ouroboros/retrieval"
import { Layer } from "effect"
import { Api } from "./Api.js"

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.mergeAll(
  RetrievalHttp.layerDocuments(Api),
  RetrievalHttp.layerProjections(Api),
  PipelinesHttp.layer(Api)
)
