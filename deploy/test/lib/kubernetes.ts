/**
 * Kubernetes objects: rendering an overlay with `kubectl kustomize`, validation with kubernetes-models, a check for
 * unknown fields, and a structural check of the Prometheus Operator's ServiceMonitor (not in kubernetes-models).
 *
 * kubernetes-models' `validate()` checks types, required fields and enums against the Kubernetes OpenAPI schemas,
 * but accepts fields the schema does not have (`readinesProbe:` would pass, and the API server would drop it or
 * refuse it). `unknownFields` closes that gap: it walks an object along the models' TypeScript declarations
 * (`node_modules/kubernetes-models/<group>/<version>/<Kind>.d.ts` and the interfaces they import) and reports every
 * key that no interface declares.
 */
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { parseAllDocuments } from "yaml"

export interface K8sObject {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> }
  readonly [key: string]: any
}

/** `kubectl kustomize <dir>` → its objects; undefined when kubectl is not installed. */
export const kustomize = (dir: string): Array<K8sObject> | undefined => {
  const result = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 60_000 })
  if (result.error !== undefined && (result.error as NodeJS.ErrnoException).code === "ENOENT") return undefined
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${result.stderr || result.error}`)
  return parseAllDocuments(result.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${dir}: ${doc.errors.map((e) => e.message).join("; ")}`)
      return doc.toJS() as K8sObject
    })
    .filter((o) => o !== null)
}

/** The module path of the kubernetes-models class of an apiVersion / kind, e.g. `apps/v1/Deployment`. */
export const modelPath = (apiVersion: string, kind: string) => `${apiVersion}/${kind}`

/** Validates with the kubernetes-models class (`validate()`); throws its message, or says the kind is unknown. */
export const validateModel = async (object: K8sObject): Promise<"validated" | "no model"> => {
  let module: Record<string, any>
  try {
    module = await import(/* @vite-ignore */ `kubernetes-models/${modelPath(object.apiVersion, object.kind)}`)
  } catch {
    return "no model"
  }
  const Model = module[object.kind]
  if (Model === undefined) return "no model"
  new Model(object).validate()
  return "validated"
}

// ---- unknown fields, along the models' .d.ts declarations

type TypeExpr =
  | { readonly t: "leaf" }
  | { readonly t: "array"; readonly of: TypeExpr }
  | { readonly t: "map"; readonly of: TypeExpr }
  | { readonly t: "ref"; readonly file: string }

interface Shape {
  readonly props: Map<string, TypeExpr>
}

const modelsRoot = (repo: string) => join(repo, "node_modules")
const shapes = new Map<string, Shape | "leaf">()

const stripComments = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "")

// Splits an interface body into `"name"?: type` entries (types may span lines and nest braces).
const properties = (body: string): Array<[string, string]> => {
  const out: Array<[string, string]> = []
  let i = 0
  while (i < body.length) {
    const m = /^\s*"([^"]+)"\??:\s*/.exec(body.slice(i))
    if (m === null) {
      i++
      continue
    }
    i += m[0].length
    let depth = 0
    let type = ""
    for (; i < body.length; i++) {
      const c = body[i]!
      if (c === "{" || c === "<" || c === "(") depth++
      if (c === "}" || c === ">" || c === ")") depth--
      if (c === ";" && depth === 0) break
      type += c
    }
    out.push([m[1]!, type.trim()])
    i++
  }
  return out
}

const shapeOf = (file: string): Shape | "leaf" => {
  const cached = shapes.get(file)
  if (cached !== undefined) return cached
  if (!existsSync(file)) throw new Error(`no declaration file ${file}`)
  const text = stripComments(readFileSync(file, "utf8"))
  const imports = new Map<string, string>()
  for (const m of text.matchAll(/import\s*\{\s*(\w+)\s*\}\s*from\s*"([^"]+)"/g)) {
    const spec = m[2]!
    const target = spec.startsWith(".")
      ? resolve(dirname(file), spec.replace(/\.js$/, ".d.ts"))
      : join(modelsRoot(file.slice(0, file.indexOf("/node_modules/"))), `${spec}.d.ts`)
    imports.set(m[1]!, target)
  }
  const start = /export interface \w+(?:\s+extends\s+[^{]+)?\s*\{/.exec(text)
  if (start === null) {
    shapes.set(file, "leaf") // a type alias: string | number, a Time, ...
    return "leaf"
  }
  let depth = 0
  let end = start.index + start[0].length - 1
  for (; end < text.length; end++) {
    if (text[end] === "{") depth++
    if (text[end] === "}" && --depth === 0) break
  }
  const body = text.slice(start.index + start[0].length, end)
  const parse = (type: string): TypeExpr => {
    const t = type.trim()
    const array = /^Array<([\s\S]*)>$/.exec(t)
    if (array !== null) return { t: "array", of: parse(array[1]!) }
    const map = /^\{\s*\[key: string\]:\s*([\s\S]*?);?\s*\}$/.exec(t)
    if (map !== null) return { t: "map", of: parse(map[1]!) }
    const ref = imports.get(t)
    return ref !== undefined ? { t: "ref", file: ref } : { t: "leaf" }
  }
  const shape = { props: new Map(properties(body).map(([name, type]) => [name, parse(type)])) }
  shapes.set(file, shape)
  return shape
}

/** Every key of `object` that the models' declarations of its kind do not declare, as JSON-ish paths. */
export const unknownFields = (repo: string, object: K8sObject): Array<string> => {
  const file = join(modelsRoot(repo), "kubernetes-models", `${modelPath(object.apiVersion, object.kind)}.d.ts`)
  if (!existsSync(file)) return [`(no declarations for ${object.apiVersion} ${object.kind})`]
  const problems: Array<string> = []
  const visit = (value: unknown, type: TypeExpr, path: string) => {
    if (value === null || value === undefined) return
    switch (type.t) {
      case "leaf":
        return
      case "array":
        if (Array.isArray(value)) value.forEach((v, i) => visit(v, type.of, `${path}[${i}]`))
        return
      case "map":
        if (typeof value === "object") { for (const [k, v] of Object.entries(value)) visit(v, type.of, `${path}.${k}`) }
        return
      case "ref": {
        const shape = shapeOf(type.file)
        if (shape === "leaf" || typeof value !== "object" || Array.isArray(value)) return
        for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
          const prop = shape.props.get(k)
          if (prop === undefined) problems.push(`${path}.${k}`)
          else visit(v, prop, `${path}.${k}`)
        }
      }
    }
  }
  visit(object, { t: "ref", file }, object.kind)
  return problems
}

// ---- ServiceMonitor (monitoring.coreos.com/v1), checked against the part of its CRD schema this repository uses

// Prometheus' duration format, as the CRD's pattern
const duration = /^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$/
const seconds = (d: string) => {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(d)
  return m === null ? NaN : Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)
}

/** Structural problems of a ServiceMonitor: fields, types, formats (an empty list when it is well-formed). */
export const serviceMonitorProblems = (object: K8sObject): Array<string> => {
  const problems: Array<string> = []
  const only = (value: Record<string, unknown>, allowed: Array<string>, path: string) => {
    for (const k of Object.keys(value)) if (!allowed.includes(k)) problems.push(`${path}.${k}: not a field`)
  }
  const isObject = (v: unknown): v is Record<string, any> => typeof v === "object" && v !== null && !Array.isArray(v)
  if (object.apiVersion !== "monitoring.coreos.com/v1") problems.push("apiVersion")
  if (object.kind !== "ServiceMonitor") problems.push("kind")
  only(object, ["apiVersion", "kind", "metadata", "spec"], "")
  if (typeof object.metadata?.name !== "string") problems.push("metadata.name: required")
  const spec = object.spec
  if (!isObject(spec)) return [...problems, "spec: required object"]
  only(spec, [
    "selector",
    "endpoints",
    "namespaceSelector",
    "jobLabel",
    "targetLabels",
    "podTargetLabels",
    "sampleLimit"
  ], "spec")
  if (!isObject(spec.selector)) problems.push("spec.selector: required object")
  else {
    only(spec.selector, ["matchLabels", "matchExpressions"], "spec.selector")
    for (const [k, v] of Object.entries(spec.selector.matchLabels ?? {})) {
      if (typeof v !== "string") problems.push(`spec.selector.matchLabels.${k}: string`)
    }
  }
  if (!Array.isArray(spec.endpoints) || spec.endpoints.length === 0) problems.push("spec.endpoints: a non-empty list")
  for (const [i, e] of (Array.isArray(spec.endpoints) ? spec.endpoints : []).entries()) {
    const at = `spec.endpoints[${i}]`
    if (!isObject(e)) {
      problems.push(`${at}: object`)
      continue
    }
    only(e, [
      "port",
      "targetPort",
      "path",
      "scheme",
      "interval",
      "scrapeTimeout",
      "honorLabels",
      "relabelings",
      "metricRelabelings"
    ], at)
    if (typeof e.port !== "string" && e.targetPort === undefined) {
      problems.push(`${at}: port (a Service port name) or targetPort`)
    }
    if (e.path !== undefined && (typeof e.path !== "string" || !e.path.startsWith("/"))) problems.push(`${at}.path`)
    if (e.scheme !== undefined && !["http", "https"].includes(e.scheme)) problems.push(`${at}.scheme: http | https`)
    for (const f of ["interval", "scrapeTimeout"]) {
      if (e[f] !== undefined && (typeof e[f] !== "string" || !duration.test(e[f]))) {
        problems.push(`${at}.${f}: a duration`)
      }
    }
    if (e.interval !== undefined && e.scrapeTimeout !== undefined && seconds(e.scrapeTimeout) > seconds(e.interval)) {
      problems.push(`${at}.scrapeTimeout: longer than interval (Prometheus refuses it)`)
    }
  }
  return problems
}

/** Whether a label selector (matchLabels only) selects `labels`. */
export const selects = (
  selector: { matchLabels?: Record<string, string> } | undefined,
  labels: Record<string, string>
) => selector !== undefined && Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v)
