/**
 * The vector store of the server: the embedded store under DATA_DIR, or Qdrant when `QDRANT_URL` is set.
 *
 * @since 0.1.0
 */
import { Embedded } from "@ouroboros/vector-store"
import { Layer } from "effect"

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (directory: string) => Embedded.layer({ directory }).pipe(Layer.orDie)
