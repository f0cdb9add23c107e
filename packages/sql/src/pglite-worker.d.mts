/**
 * Types of `pglite-worker.mjs` where it is imported on a main thread (its tests): the worker's body runs only in a
 * worker thread.
 *
 * @internal
 */
export declare const untar: (tarball: Uint8Array, root: string) => void
