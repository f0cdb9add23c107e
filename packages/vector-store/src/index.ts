/**
 * @since 0.1.0
 */
export * as VectorStore from "./VectorStore.js"

/**
 * @since 0.1.0
 */
export * as Filter from "./Filter.js"

/**
 * @since 0.1.0
 */
export * as Embedded from "./VectorStore/Embedded.js"

/**
 * @since 0.1.0
 */
export * as Qdrant from "./VectorStore/Qdrant.js"

/**
 * @since 0.1.0
 */
export * as VectorStoreConfig from "./VectorStoreConfig.js"
