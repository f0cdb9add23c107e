/**
 * The errors of the `Llm` and `Embedder` services. Every error says whether trying again may help (`retryable`), so
 * that a circuit breaker counts only the failures that mean "the model server is in trouble".
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The model server cannot be reached or did not answer in time: connection refused or reset, a 5xx or 429 status,
 * a timeout, a stream cut short. Retryable, and what a circuit breaker should count.
 *
 * @since 0.1.0
 * @category errors
 */
export class LlmUnavailable extends Schema.TaggedError<LlmUnavailable>("@ouroboros/llm/LlmUnavailable")(
  "LlmUnavailable",
  {
    reason: Schema.Literals(["connection", "timeout", "status", "stream"]),
    detail: Schema.String,
    status: Schema.optional(Schema.Int)
  }
) {
  /**
   * @since 0.1.0
   */
  get retryable(): boolean {
    return true
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.detail
  }
}

/**
 * The model is not installed on the model server (Ollama answers 404). Not retryable: pull the model first.
 *
 * @since 0.1.0
 * @category errors
 */
export class ModelNotFound extends Schema.TaggedError<ModelNotFound>("@ouroboros/llm/ModelNotFound")(
  "ModelNotFound",
  { model: Schema.String, detail: Schema.String }
) {
  /**
   * @since 0.1.0
   */
  get retryable(): boolean {
    return false
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.detail
  }
}

/**
 * The model server refused the request itself (a 4xx other than 404, 408 and 429), say an input it cannot take.
 * Not retryable: the same request would fail again.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>("@ouroboros/llm/InvalidRequest")(
  "InvalidRequest",
  { status: Schema.Int, detail: Schema.String }
) {
  /**
   * @since 0.1.0
   */
  get retryable(): boolean {
    return false
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.detail
  }
}

/**
 * The model server answered with a body that does not decode (a schema mismatch, an embedding of the wrong size).
 * Not retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidResponse extends Schema.TaggedError<InvalidResponse>("@ouroboros/llm/InvalidResponse")(
  "InvalidResponse",
  { detail: Schema.String }
) {
  /**
   * @since 0.1.0
   */
  get retryable(): boolean {
    return false
  }

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.detail
  }
}

/**
 * Every error of the `Llm` and `Embedder` services.
 *
 * @since 0.1.0
 * @category errors
 */
export type LlmError = LlmUnavailable | ModelNotFound | InvalidRequest | InvalidResponse

/**
 * The schema of {@link LlmError}, for storing or sending one.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LlmError: Schema.Union<
  readonly [typeof LlmUnavailable, typeof ModelNotFound, typeof InvalidRequest, typeof InvalidResponse]
> = Schema.Union([LlmUnavailable, ModelNotFound, InvalidRequest, InvalidResponse])

/**
 * Whether trying again may help; `false` for anything that is not an {@link LlmError}.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isRetryable = (error: unknown): boolean => error instanceof LlmUnavailable

/**
 * Whether `u` is one of the {@link LlmError}s.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isLlmError = (u: unknown): u is LlmError =>
  u instanceof LlmUnavailable || u instanceof ModelNotFound || u instanceof InvalidRequest ||
  u instanceof InvalidResponse
