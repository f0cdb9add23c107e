/**
 * OpenAPI documents that describe the problems a server really sends.
 *
 * Effect's generator documents each error class as a component of its own (`{ _tag, detail }`,
 * `additionalProperties: false`) under `application/json`, while `ProblemHttp` answers every error as
 * `application/problem+json` with `type`, `title`, `status` and `correlationId`: no real error body validates against
 * the document, the failures the server answers itself (400 for a request that does not decode, 413, 429, 503, 500)
 * are not declared, nor are the header fields every response carries. {@link transform} rewrites a generated document:
 *
 * - every error response (4xx, 5xx, `default`) gets `application/problem+json` with the shared {@link problemSchema}
 *   (as `#/components/schemas/Problem`), narrowed to its status and to the extension members of the errors declared
 *   there; the error classes' own components are removed when nothing else uses them. Other media types of an error
 *   response (a health check's `application/health+json`) are kept: `ProblemHttp` leaves them as they are;
 * - the responses that the server's middleware can give any operation are added: 400 (`request-validation`) where an
 *   operation has parameters or a body, 401 where it needs credentials, 413 where it has a body, 429 where rate limits
 *   apply, 500 and 503 everywhere;
 * - response header fields: `X-Correlation-ID` on every response, `Retry-After` on 429 and 503, `RateLimit` and
 *   `RateLimit-Policy` where rate limits apply, `api-version` and `api-supported-versions` where versions are
 *   negotiated (with `Deprecation`, `Sunset` and `Link` for a deprecated version), `WWW-Authenticate` on 401;
 * - a request body whose schema accepts `null` is optional (HttpApi decodes an empty body as `null`);
 * - component names outside `^[a-zA-Z0-9._-]+$` (`@ouroboros/backup/Manifest`) are renamed (to their last segment,
 *   `Manifest`, when it is free) and every `$ref` follows;
 * - `info` (title, version, description, license) and `servers` are set; an operation without a summary gets one, and a
 *   response described by a schema identifier (`@ouroboros/backup/Manifest`) gets its status's reason phrase;
 * - error responses that are the same in several operations are shared (`#/components/responses/NotFound`).
 *
 * Apply it to the document a server serves: as an api's `OpenApi.Transform` ({@link annotate}), or on a finished
 * document (a merge of several apis' documents) with {@link transform} directly.
 *
 * @since 0.1.0
 */
import type { HttpApi, HttpApiGroup } from "effect/http-api"
import { OpenApi } from "effect/http-api"
import * as Problem from "./Problem.js"

/**
 * One operation of a document, for the options that apply to some operations only.
 *
 * @since 0.1.0
 * @category models
 */
export interface Operation {
  /** Upper case (`GET`). */
  readonly method: string
  /** As the document writes it (`/api/v1/documents/{id}`). */
  readonly path: string
  readonly operation: Readonly<Record<string, unknown>>
}

/**
 * Selects operations.
 *
 * @since 0.1.0
 * @category models
 */
export type Matcher = (operation: Operation) => boolean

/**
 * The operations whose path starts with one of `prefixes`.
 *
 * @since 0.1.0
 * @category matchers
 */
export const pathPrefix = (...prefixes: ReadonlyArray<string>): Matcher => ({ path }) =>
  prefixes.some((prefix) => path.startsWith(prefix))

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly title?: string | undefined
  /** `info.version`: the version of the API the document describes. */
  readonly version?: string | undefined
  readonly description?: string | undefined
  /** OpenAPI 3.1 asks for a URL or an SPDX identifier besides the name. */
  readonly license?:
    | { readonly name: string; readonly url: string }
    | { readonly name: string; readonly identifier: string }
    | undefined
  readonly servers?: ReadonlyArray<{ readonly url: string; readonly description?: string | undefined }> | undefined
  /** Whether problem bodies carry `_tag` (as `ProblemHttp`'s option of the same name; default `"keep"`). */
  readonly tags?: "keep" | "omit" | undefined
  /** Whether problems have documented type URIs (as `ProblemHttp`'s option; default `"blank"`). */
  readonly types?: "blank" | "documented" | undefined
  readonly typeBase?: string | undefined
  /** Operations whose responses carry the rate-limit fields and that may answer 429 (default: none). */
  readonly rateLimited?: Matcher | boolean | undefined
  /** Operations whose responses carry `api-version` and `api-supported-versions` (default: none). */
  readonly versioned?: Matcher | boolean | undefined
  /** 400 where an operation has parameters or a body (default `true`). */
  readonly validation?: boolean | undefined
  /** 401 where an operation needs credentials (default `true`). */
  readonly unauthorized?: boolean | undefined
  /** 413 where an operation has a body (default `true`). */
  readonly payloadTooLarge?: boolean | undefined
  /** 500 on every operation (default `true`). */
  readonly internalError?: boolean | undefined
  /** 503 on every operation: a dependency down, load shedding, draining (default `true`). */
  readonly serviceUnavailable?: boolean | undefined
  /** `X-Correlation-ID` on every response (default `true`). */
  readonly correlationId?: boolean | undefined
  /**
   * An operation without a `summary` (an `OpenApi.Summary` annotation) gets the first sentence of its description, or
   * its method and path (default `true`: linters require summaries; annotate endpoints for better ones).
   */
  readonly summaries?: boolean | undefined
}

// -----------------------------------------------------------------------------
// schemas
// -----------------------------------------------------------------------------

/**
 * The members that every problem may have, and the kernel's extension members.
 *
 * @since 0.1.0
 * @category schemas
 */
export const standardMembers: ReadonlySet<string> = new Set([
  "type",
  "title",
  "status",
  "detail",
  "instance",
  "correlationId"
])

/**
 * The shared problem schema (JSON Schema 2020-12, as OpenAPI 3.1 uses it): the members of RFC 9457 and
 * `correlationId`, and the extension members of the kernel's problem types (`Problem.types`). Other extension members
 * are allowed. Its `ProblemIssue` items refer to `#/components/schemas/ProblemIssue` ({@link problemIssueSchema}).
 *
 * @since 0.1.0
 * @category schemas
 */
export const problemSchema = (options?: Pick<Options, "tags" | "types" | "typeBase">): Record<string, unknown> => {
  const base = options?.typeBase ?? Problem.typeBase
  const documented = options?.types === "documented"
  return {
    type: "object",
    description: "Problem details (RFC 9457), the body of every error response (`application/problem+json`). " +
      (documented
        ? `\`type\` is a URI under ${base} that names the problem type (each is documented there).`
        : "`type` is `about:blank` unless the problem names a more specific type."),
    properties: {
      type: {
        type: "string",
        format: "uri-reference",
        description: "The problem type: what happened, in a form a client can switch on.",
        examples: [documented ? `${base}not-found` : "about:blank"]
      },
      title: { type: "string", description: "A short summary of the problem type." },
      status: { type: "integer", minimum: 400, maximum: 599, description: "The HTTP status of the response." },
      detail: { type: "string", description: "What went wrong with this request, for a person." },
      instance: { type: "string", format: "uri-reference", description: "This occurrence of the problem." },
      correlationId: {
        type: "string",
        description: "The request's `X-Correlation-ID`: give it when reporting the problem."
      },
      issues: {
        type: "array",
        description: "`request-validation`: what did not decode, in schema order (at most 20).",
        items: { $ref: "#/components/schemas/ProblemIssue" }
      },
      issuesOmitted: {
        type: "integer",
        minimum: 1,
        description: "`request-validation`: issues found and not listed."
      },
      retryAfter: {
        type: "number",
        minimum: 0,
        description: "`too-many-requests`, `service-unavailable`: seconds until a retry can succeed."
      },
      maxBytes: { type: "integer", minimum: 0, description: "`payload-too-large`: the largest body accepted." },
      maxDepth: { type: "integer", minimum: 1, description: "`json-too-deep`: the deepest nesting accepted." },
      allow: {
        type: "array",
        items: { type: "string" },
        description: "`method-not-allowed`: the methods the path accepts."
      },
      ...(options?.tags === "omit" ? {} : {
        _tag: {
          type: "string",
          deprecated: true,
          description: "The server's internal name of the error. Do not depend on it: switch on `type`."
        }
      })
    },
    required: ["type", "title", "status"],
    additionalProperties: true
  }
}

/**
 * One issue of a `request-validation` problem.
 *
 * @since 0.1.0
 * @category schemas
 */
export const problemIssueSchema: Record<string, unknown> = {
  type: "object",
  properties: {
    path: {
      type: "array",
      items: { anyOf: [{ type: "string" }, { type: "integer" }] },
      description: "The keys and indexes from the root of the invalid part (path parameters, query, headers or body)."
    },
    message: { type: "string", description: "What was expected there." }
  },
  required: ["path", "message"],
  additionalProperties: false
}

const headerComponents: Record<string, Record<string, unknown>> = {
  "X-Correlation-ID": {
    description: "The request's correlation id: the one it sent (at most 128 of `A-Z a-z 0-9 . _ : -`) or a new one.",
    required: true,
    schema: { type: "string", pattern: "^[A-Za-z0-9._:-]{1,128}$" }
  },
  "Retry-After": {
    description: "Seconds until a retry can succeed.",
    schema: { type: "integer", minimum: 0 }
  },
  RateLimit: {
    description: "The state of the rate-limit policies that apply (IETF RateLimit header fields draft): " +
      "`\"name\";r=remaining;t=seconds-to-reset`, one item per policy.",
    schema: { type: "string" }
  },
  "RateLimit-Policy": {
    description: "The rate-limit policies that apply: `\"name\";q=quota;w=window-seconds`, one item per policy.",
    schema: { type: "string" }
  },
  "api-version": {
    description: "The API version that served the request.",
    required: true,
    schema: { type: "string" }
  },
  "api-supported-versions": {
    description: "The API versions the server serves, newest first.",
    required: true,
    schema: { type: "string" }
  },
  "WWW-Authenticate": {
    description: "The authentication schemes the server accepts.",
    schema: { type: "string" }
  },
  Deprecation: {
    description: "The API version that served the request is deprecated, since this moment (RFC 9745: `@` and " +
      "the epoch seconds).",
    schema: { type: "string", pattern: "^@-?[0-9]+$" }
  },
  Sunset: {
    description: "The API version that served the request stops being served at this HTTP-date (RFC 8594).",
    schema: { type: "string" }
  },
  Link: {
    description: "Where the deprecation of the API version is explained (`<url>; rel=\"deprecation\"`, RFC 9745).",
    schema: { type: "string" }
  }
}

// -----------------------------------------------------------------------------
// the transform
// -----------------------------------------------------------------------------

type Json = Record<string, any>

const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const

const componentKey = /^[a-zA-Z0-9._-]+$/

const isErrorStatus = (status: string): boolean => /^[45](\d\d|XX)$/i.test(status) || status === "default"

const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

const matcher = (option: Matcher | boolean | undefined): Matcher =>
  typeof option === "function" ? option : () => option === true

const escapePointer = (token: string) => token.replace(/~/g, "~0").replace(/\//g, "~1")
const unescapePointer = (token: string) => token.replace(/~1/g, "/").replace(/~0/g, "~")

// Every object of the document, without recursion.
const eachObject = (root: unknown, f: (object: Json) => void): void => {
  const stack: Array<unknown> = [root]
  while (stack.length > 0) {
    const value = stack.pop()
    if (Array.isArray(value)) {
      for (const item of value) stack.push(item)
    } else if (isObject(value)) {
      f(value)
      for (const key of Object.keys(value)) stack.push(value[key])
    }
  }
}

const sectionRef = (section: string, name: string) => `#/components/${section}/${escapePointer(name)}`

// The component a `$ref` names: [section, name], or undefined for another kind of reference.
const refTarget = (ref: unknown): readonly [string, string] | undefined => {
  if (typeof ref !== "string" || !ref.startsWith("#/components/")) return undefined
  const [section, name] = ref.slice("#/components/".length).split("/")
  return section === undefined || name === undefined ? undefined : [section, unescapePointer(name)]
}

// Renames components whose keys OpenAPI refuses, and rewrites every reference to them (refs into them included).
const sanitizeComponentKeys = (spec: Json): void => {
  const components = spec.components
  if (!isObject(components)) return
  const renames = new Map<string, string>() // old pointer prefix → new pointer prefix
  for (const section of Object.keys(components)) {
    const entries = components[section]
    if (!isObject(entries)) continue
    const used = new Set(Object.keys(entries).filter((key) => componentKey.test(key)))
    const next: Json = {}
    for (const key of Object.keys(entries)) {
      if (componentKey.test(key)) {
        next[key] = entries[key]
        continue
      }
      // The last segment of an identifier (`@ouroboros/backup/Manifest` → `Manifest`) when it is free.
      const last = key.split("/").pop()!.replace(/[^a-zA-Z0-9._-]/g, "_")
      const base = last.length > 0 && !used.has(last) && !(last in entries)
        ? last
        : key.replace(/[^a-zA-Z0-9._-]/g, "_").replace(/^$/, "_")
      let name = base
      for (let i = 1; used.has(name); i++) name = `${base}_${i}`
      used.add(name)
      next[name] = entries[key]
      renames.set(sectionRef(section, key), sectionRef(section, name))
    }
    components[section] = next
  }
  if (renames.size === 0) return
  eachObject(spec, (object) => {
    const ref = object.$ref
    if (typeof ref !== "string") return
    for (const [from, to] of renames) {
      if (ref === from || ref.startsWith(`${from}/`)) {
        object.$ref = to + ref.slice(from.length)
        return
      }
    }
  })
}

const resolveSchema = (spec: Json, schema: unknown): Json | undefined => {
  let current = schema
  for (let hops = 0; hops < 16 && isObject(current) && typeof current.$ref === "string"; hops++) {
    const target = refTarget(current.$ref)
    if (target === undefined) return undefined
    current = spec.components?.[target[0]]?.[target[1]]
  }
  return isObject(current) ? current : undefined
}

// The declared error bodies of one response: the object schemas (their union members too).
const declaredBodies = (spec: Json, schema: unknown): Array<Json> => {
  const out: Array<Json> = []
  const stack = [schema]
  while (stack.length > 0 && out.length < 256) {
    const resolved = resolveSchema(spec, stack.pop())
    if (resolved === undefined) continue
    const union = resolved.anyOf ?? resolved.oneOf
    if (Array.isArray(union)) {
      stack.push(...union)
    } else {
      out.push(resolved)
    }
  }
  return out
}

// Whether every JSON media type of a request body accepts `null` (directly or as a member of a union).
const acceptsNull = (spec: Json, requestBody: Json): boolean => {
  const content = isObject(requestBody.content) ? requestBody.content : {}
  const json = Object.entries(content).filter(([type]) => /json/i.test(type))
  return json.length > 0 && json.every(([, media]) => {
    const schema = resolveSchema(spec, isObject(media) ? media.schema : undefined)
    if (schema === undefined) return false
    const isNull = (u: unknown) => {
      const s = resolveSchema(spec, u)
      return s !== undefined && (s.type === "null" || (Array.isArray(s.type) && s.type.includes("null")))
    }
    const union = schema.anyOf ?? schema.oneOf
    return isNull(schema) || (Array.isArray(union) && union.some(isNull))
  })
}

// The `type` a declared error body fixes for itself (`{ const }` or a one-member `enum`), if any.
const ownTypes = (body: Json): Array<string> => {
  const type = isObject(body.properties) ? body.properties.type : undefined
  if (!isObject(type)) return []
  if (typeof type.const === "string") return [type.const]
  return Array.isArray(type.enum) ? type.enum.filter((t: unknown): t is string => typeof t === "string") : []
}

const tagsOf = (body: Json): Array<string> => {
  const tag = isObject(body.properties) ? body.properties._tag : undefined
  if (!isObject(tag)) return []
  if (typeof tag.const === "string") return [tag.const]
  return Array.isArray(tag.enum) ? tag.enum.filter((t: unknown): t is string => typeof t === "string") : []
}

// Component schemas that a value refers to, directly.
const refsIn = (value: unknown): Set<string> => {
  const out = new Set<string>()
  eachObject(value, (object) => {
    const target = refTarget(object.$ref)
    if (target !== undefined && target[0] === "schemas") out.add(target[1])
  })
  return out
}

const removeOrphans = (spec: Json, candidates: ReadonlySet<string>): void => {
  const schemas: Json | undefined = spec.components?.schemas
  if (!isObject(schemas) || candidates.size === 0) return
  // Reachable from everything but the component schemas themselves, then through them.
  const { schemas: _schemas, ...rest } = spec.components
  const reachable = refsIn({ ...spec, components: rest })
  const queue = [...reachable]
  while (queue.length > 0) {
    const name = queue.pop()!
    for (const next of refsIn(schemas[name])) {
      if (!reachable.has(next)) {
        reachable.add(next)
        queue.push(next)
      }
    }
  }
  for (const name of candidates) if (!reachable.has(name)) delete schemas[name]
}

const hasHeader = (headers: Json, name: string) =>
  Object.keys(headers).some((key) => key.toLowerCase() === name.toLowerCase())

const addHeader = (response: Json, name: string, required?: boolean) => {
  const headers: Json = response.headers ??= {}
  if (hasHeader(headers, name)) return
  headers[name] = required === undefined
    ? { $ref: `#/components/headers/${name}` }
    : { ...headerComponents[name], required }
}

const successTitles: Record<string, string> = {
  "200": "OK",
  "201": "Created",
  "202": "Accepted",
  "204": "No Content"
}

// A schema identifier that Effect used as a description (`@ouroboros/backup/Manifest`), or none.
// Error responses that are the same in several operations (the 500s, the 503s, a 401 of every secured operation)
// become one component each (`#/components/responses/ServiceUnavailable`): a third of the document's size.
const shareResponses = (
  spec: Json,
  written: ReadonlyArray<{ readonly responses: Json; readonly status: string }>
): void => {
  const groups = new Map<string, Array<{ readonly responses: Json; readonly status: string }>>()
  for (const entry of written) {
    const key = `${entry.status} ${JSON.stringify(entry.responses[entry.status])}`
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [entry])
    else group.push(entry)
  }
  const components: Json = spec.components.responses ??= {}
  const taken = new Set(Object.keys(components))
  for (const group of groups.values()) {
    if (group.length < 2) continue
    const { responses, status } = group[0]!
    const base = /^\d{3}$/.test(status) ? Problem.title(Number(status)).replace(/[^A-Za-z0-9]/g, "") : "Error"
    let name = base
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`
    taken.add(name)
    components[name] = responses[status]
    for (const entry of group) entry.responses[entry.status] = { $ref: `#/components/responses/${name}` }
  }
  if (Object.keys(components).length === 0) delete spec.components.responses
}

const looksLikeIdentifier = (description: unknown) =>
  typeof description !== "string" || description.length === 0 || /^[@\w.-]*\/[\w./@-]*$/.test(description)

/**
 * The transform of a whole document (see the module's description). It returns a new document; the one given is left
 * as it was.
 *
 * @since 0.1.0
 * @category transforms
 * @example
 * import { ProblemOpenApi } from "@ouroboros/kernel"
 * import { OpenApi } from "effect/http-api"
 *
 * declare const api: Parameters<typeof OpenApi.fromApi>[0]
 * const document = ProblemOpenApi.transform({
 *   version: "1.4.0",
 *   servers: [{ url: "https://api.example.com" }],
 *   rateLimited: ProblemOpenApi.pathPrefix("/api/"),
 *   versioned: ProblemOpenApi.pathPrefix("/api/")
 * })(OpenApi.fromApi(api))
 */
export const transform = (options?: Options) => (document: Record<string, any>): Record<string, any> => {
  const spec: Json = structuredClone(document)
  const style = { tags: options?.tags, types: options?.types, typeBase: options?.typeBase ?? Problem.typeBase }
  const rateLimited = matcher(options?.rateLimited)
  const versioned = matcher(options?.versioned)
  const correlation = options?.correlationId ?? true

  spec.info ??= {}
  if (options?.title !== undefined) spec.info.title = options.title
  if (options?.version !== undefined) spec.info.version = options.version
  if (options?.description !== undefined) spec.info.description = options.description
  if (options?.license !== undefined) spec.info.license = { ...options.license }
  if (options?.servers !== undefined) spec.servers = options.servers.map((server) => ({ ...server }))

  sanitizeComponentKeys(spec)
  spec.components ??= {}
  spec.components.schemas ??= {}
  spec.components.schemas.Problem = problemSchema(style)
  spec.components.schemas.ProblemIssue = problemIssueSchema
  spec.components.headers = { ...headerComponents, ...spec.components.headers }

  const problemRef = { $ref: "#/components/schemas/Problem" }
  const orphans = new Set<string>()

  const problemContent = (status: string, bodies: ReadonlyArray<Json>) => {
    const extensions: Json = {}
    for (const body of bodies) {
      if (!isObject(body.properties)) continue
      for (const [name, schema] of Object.entries(body.properties)) {
        if (standardMembers.has(name) || name === "_tag" || name in extensions) continue
        extensions[name] = schema
      }
    }
    const narrowed: Json = { type: "object", properties: { ...extensions } }
    if (/^\d{3}$/.test(status)) narrowed.properties.status = { const: Number(status) }
    return {
      schema: Object.keys(narrowed.properties).length === 0
        ? { ...problemRef }
        : { allOf: [{ ...problemRef }, narrowed] }
    }
  }

  // The description of an error response, with the problem type URIs it may carry in the documented style.
  const describe = (status: string, description: unknown, uris: ReadonlyArray<string>) => {
    const base = looksLikeIdentifier(description)
      ? (/^\d{3}$/.test(status) ? Problem.title(Number(status)) : "Error")
      : String(description)
    if (style.types !== "documented" || uris.length === 0) return base
    return `${base} (problem types: ${[...new Set(uris)].map((uri) => `\`${uri}\``).join(", ")})`
  }

  const uriOf = (name: string) => name.includes(":") ? name : style.typeBase + name

  // The problem types the server's middleware gives an operation at a status, beyond the errors it declares.
  const middlewareTypes = (status: string, hasBody: boolean, hasParameters: boolean): Array<string> => {
    switch (status) {
      case "400":
        return [
          ...(hasBody || hasParameters ? ["request-validation"] : []),
          ...(hasBody ? ["malformed-json", "json-too-deep"] : [])
        ]
      case "401":
        return ["unauthorized"]
      case "413":
        return ["payload-too-large"]
      case "429":
        // The rate limiter's problems name IANA's registered type; the kernel's `TooManyRequests` its own.
        return [Problem.quotaExceededType, "too-many-requests"]
      case "500":
        return ["internal-error"]
      case "503":
        return ["service-unavailable"]
      default:
        return []
    }
  }

  const rewriteError = (status: string, response: Json, extraTypes: ReadonlyArray<string>): Json => {
    const content: Json = isObject(response.content) ? response.content : {}
    const bodies: Array<Json> = []
    const kept: Json = {}
    for (const [mediaType, media] of Object.entries(content)) {
      const type = mediaType.split(";", 1)[0]!.trim().toLowerCase()
      if (type === "application/json" || type === Problem.contentType) {
        // ProblemHttp answers these as problems.
        for (const name of refsIn(media)) orphans.add(name)
        bodies.push(...declaredBodies(spec, isObject(media) ? media.schema : undefined))
      } else {
        kept[mediaType] = media
      }
    }
    // A declared error that fixes its own `type` (a `Schema.Literal`) has that type; another the one of its tag.
    const uris = bodies.flatMap((body) => {
      const own = ownTypes(body)
      if (own.length > 0) return own
      return tagsOf(body).flatMap((tag) => {
        const name = Problem.typeName(tag, Number(status))
        return name === undefined ? [] : [uriOf(name)]
      })
    })
    return {
      ...response,
      description: describe(status, response.description, [...uris, ...extraTypes.map(uriOf)]),
      content: { [Problem.contentType]: problemContent(status, bodies), ...kept }
    }
  }

  const commonError = (status: string, description: string, names: ReadonlyArray<string>): Json => ({
    description: describe(status, description, names.map(uriOf)),
    content: { [Problem.contentType]: problemContent(status, []) }
  })

  // Every error response written, by operation: identical ones are shared afterwards.
  const errorResponses: Array<{ readonly responses: Json; readonly status: string }> = []
  for (const [path, item] of Object.entries<Json>(spec.paths ?? {})) {
    if (!isObject(item)) continue
    const operations: Array<[string, Json]> = []
    for (const method of methods) if (isObject(item[method])) operations.push([method.toUpperCase(), item[method]])
    const extra = item["x-oai-additionalOperations"]
    if (isObject(extra)) {
      for (const [method, op] of Object.entries(extra)) if (isObject(op)) operations.push([method.toUpperCase(), op])
    }
    for (const [method, op] of operations) {
      const operation: Operation = { method, path, operation: op }
      const responses: Json = op.responses ??= {}
      const limited = rateLimited(operation)
      const hasBody = isObject(op.requestBody)
      if (hasBody && op.requestBody.required === true && acceptsNull(spec, op.requestBody)) {
        // HttpApi decodes an empty body as `null`: a payload that accepts `null` makes the body optional.
        op.requestBody.required = false
      }
      const hasParameters = (Array.isArray(op.parameters) && op.parameters.length > 0) ||
        (Array.isArray(item.parameters) && item.parameters.length > 0)
      const secured = Array.isArray(op.security)
        ? op.security.some((requirement: unknown) => isObject(requirement) && Object.keys(requirement).length > 0)
        : Array.isArray(spec.security) && spec.security.some((r: unknown) => isObject(r) && Object.keys(r).length > 0)
      if ((options?.summaries ?? true) && typeof op.summary !== "string") {
        op.summary = typeof op.description === "string" && op.description.length > 0
          ? op.description.split(/(?<=\.)\s/, 1)[0]!.slice(0, 120)
          : `${method} ${path}`
      }
      for (const status of Object.keys(responses)) {
        const response = responses[status]
        if (!isObject(response) || typeof response.$ref === "string") continue
        if (isErrorStatus(status)) {
          responses[status] = rewriteError(status, response, middlewareTypes(status, hasBody, hasParameters))
        } else if (looksLikeIdentifier(response.description)) {
          response.description = successTitles[status] ?? "Success"
        }
      }
      const add = (status: number, description: string) => {
        const key = String(status)
        if (responses[key] === undefined) {
          responses[key] = commonError(key, description, middlewareTypes(key, hasBody, hasParameters))
        }
      }
      if ((options?.validation ?? true) && (hasParameters || hasBody)) {
        add(400, "The request does not match the operation's schema, or its body is not valid JSON")
      }
      if ((options?.unauthorized ?? true) && secured) add(401, "Credentials are missing or invalid")
      if ((options?.payloadTooLarge ?? true) && hasBody) add(413, "The body is larger than the server accepts")
      if (limited) add(429, "A rate limit or quota is exhausted")
      if (options?.internalError ?? true) add(500, "The server could not complete the request")
      if (options?.serviceUnavailable ?? true) {
        add(503, "A dependency is unavailable, the server is overloaded, or it is shutting down")
      }
      for (const status of Object.keys(responses)) {
        const response = responses[status]
        if (!isObject(response) || typeof response.$ref === "string") continue
        if (correlation) addHeader(response, "X-Correlation-ID")
        if (versioned(operation)) {
          addHeader(response, "api-version")
          addHeader(response, "api-supported-versions")
          addHeader(response, "Deprecation")
          addHeader(response, "Sunset")
          addHeader(response, "Link")
        }
        if (limited) {
          addHeader(response, "RateLimit")
          addHeader(response, "RateLimit-Policy")
        }
        if (status === "429") addHeader(response, "Retry-After", true)
        if (status === "503") addHeader(response, "Retry-After")
        if (status === "401") addHeader(response, "WWW-Authenticate")
        if (isErrorStatus(status)) errorResponses.push({ responses, status })
      }
    }
  }

  shareResponses(spec, errorResponses)
  removeOrphans(spec, orphans)
  // Header components nothing uses are dropped (a linter reports unused components).
  const usedHeaders = new Set<string>()
  eachObject({ paths: spec.paths, responses: spec.components.responses }, (object) => {
    const target = refTarget(object.$ref)
    if (target !== undefined && target[0] === "headers") usedHeaders.add(target[1])
  })
  for (const name of Object.keys(headerComponents)) {
    if (!usedHeaders.has(name) && spec.components.headers[name] === headerComponents[name]) {
      delete spec.components.headers[name]
    }
  }
  if (Object.keys(spec.components.headers).length === 0) delete spec.components.headers
  return spec
}

/**
 * The api with {@link transform} as its `OpenApi.Transform`: `OpenApi.fromApi(api)` (and the `openapiPath` of
 * `HttpApiBuilder.layer`) gives the transformed document.
 *
 * @since 0.1.0
 * @category transforms
 */
export const annotate = (options?: Options) =>
<Id extends string, Groups extends HttpApiGroup.Constraint>(
  api: HttpApi.HttpApi<Id, Groups>
): HttpApi.HttpApi<Id, Groups> => api.annotate(OpenApi.Transform, transform(options))
