/**
 * The environment variables the server reads, found by scanning its source (TypeScript's parser, no type checking).
 *
 * Which source: `apps/server/src`, and the `src` of every package it reaches through `@ouroboros/<name>` imports,
 * transitively (package granularity: a config of a reached package counts even if the server never evaluates it).
 *
 * What counts as reading a variable named K:
 * 1. a string literal K (ALL_CAPS) in the name position of a `Config` constructor: `Config.String("HOST")`,
 *    `Config.Int("X")`, `Config.schema(schema, "PORT")`, `Config.Literals([...], "LOG_FORMAT")`, ... (`schema` and
 *    the capitalized functions of `Config`; the lowercase rest, `nested`, `withDefault`, `mapEffect`, ..., combine);
 * 2. K given to a helper of the same file that passes one of its parameters on to such a constructor, e.g.
 *    `millis("SHUTDOWN_DRAIN_MS", 5000)` or `atLeast("KEEP_LAST", 0)` (found to a fixpoint, so helpers of helpers too);
 * 3. `process.env.K`;
 * 4. nesting: `Config.nested(c, "P")` or `c.pipe(Config.nested("P"))` reads `P_K` for every key K of the config
 *    declaration `c` (`X.config` of a module of the same package or of an `@ouroboros` package, or a local `config`),
 *    including the keys of the configs that declaration embeds (`breaker: CircuitBreaker.config`). A template prefix
 *    `RESILIENCE_${name.toUpperCase()}` inside a function takes the string literals that function is called with in
 *    the same file (`pipeline("ollama", ...)` → `RESILIENCE_OLLAMA`). The keys of a nested declaration are not
 *    top-level names (`ENABLED` of Backup.config is only read as `BACKUP_ENABLED`).
 *
 * Not exact: a constructor called with a computed name other than a helper parameter, or a prefix it cannot
 * resolve, is reported in `unresolved` (the test fails on it, so this scanner grows with the code instead of
 * silently missing a name); and package granularity over-approximates, so the README's tables are compared too.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import ts from "typescript"

// Config's constructors take the variable's name: `schema` and the capitalized ones (String, Int, Literals, URL,
// ...); the lowercase rest are combinators (nested, withDefault, map, mapEffect, all, option, orElse, ...).
const isConstructor = (name: string) => name === "schema" || /^[A-Z]/.test(name)
// Where the name goes: `schema(codec, name)`, `Literal(s)(values, name)`, `Array(codec, name)`,
// `Record(key, value, name)`, otherwise `F(name)`.
const namePosition: Record<string, number> = { schema: 1, Literal: 1, Literals: 1, Array: 1, Record: 2 }
const nameArgument = (ctor: string, call: ts.CallExpression) => call.arguments[namePosition[ctor] ?? 0]
const isKey = (s: string) => /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/.test(s)

interface FileInfo {
  readonly path: string
  readonly source: ts.SourceFile
  /** identifier → module file, for `import * as X from "./X.js"` and `import { X } from "@ouroboros/pkg"`. */
  readonly modules: Map<string, string>
}

export interface Scan {
  /** Every variable name the server may read. */
  readonly names: ReadonlySet<string>
  /** Where each name comes from (file, relative to the repository). */
  readonly origins: ReadonlyMap<string, ReadonlyArray<string>>
  /** Things the scanner saw but could not turn into names. */
  readonly unresolved: ReadonlyArray<string>
  /** The packages reached from apps/server. */
  readonly packages: ReadonlyArray<string>
}

const sourceFiles = (dir: string): Array<string> =>
  !existsSync(dir)
    ? []
    : readdirSync(dir).flatMap((entry) => {
      const path = join(dir, entry)
      if (statSync(path).isDirectory()) return sourceFiles(path)
      return /\.(ts|mts|mjs|js)$/.test(entry) && !entry.endsWith(".d.ts") ? [path] : []
    })

const ouroborosImports = (file: string): Array<string> =>
  [...readFileSync(file, "utf8").matchAll(/from\s+["']@ouroboros\/([a-z0-9-]+)/g)].map((m) => m[1]!)

/** Packages reached from apps/server/src through @ouroboros imports. */
export const reachablePackages = (repo: string): Array<string> => {
  const seen = new Set<string>()
  const queue = sourceFiles(join(repo, "apps/server/src")).flatMap(ouroborosImports)
  while (queue.length > 0) {
    const name = queue.pop()!
    if (seen.has(name) || !existsSync(join(repo, "packages", name, "src"))) continue
    seen.add(name)
    queue.push(...sourceFiles(join(repo, "packages", name, "src")).flatMap(ouroborosImports))
  }
  return [...seen].sort()
}

const stringOf = (node: ts.Node | undefined): string | undefined =>
  node !== undefined && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined

// `Config.f(...)` → "f"
const configCall = (node: ts.Node): string | undefined =>
  ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) &&
    ts.isIdentifier(node.expression.expression) && node.expression.expression.text === "Config"
    ? node.expression.name.text
    : undefined

const walk = (node: ts.Node, visit: (n: ts.Node) => void) => {
  visit(node)
  node.forEachChild((child) => walk(child, visit))
}

const loadFile = (repo: string, path: string): FileInfo => {
  const source = ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, true)
  const modules = new Map<string, string>()
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) || statement.importClause === undefined) continue
    const specifier = (statement.moduleSpecifier as ts.StringLiteral).text
    const bindings = statement.importClause.namedBindings
    if (bindings !== undefined && ts.isNamespaceImport(bindings) && specifier.startsWith(".")) {
      modules.set(bindings.name.text, resolve(dirname(path), specifier.replace(/\.js$/, ".ts")))
    } else if (bindings !== undefined && ts.isNamedImports(bindings) && specifier.startsWith("@ouroboros/")) {
      for (const element of bindings.elements) {
        const pkg = specifier.slice("@ouroboros/".length).split("/")[0]!
        modules.set(
          element.name.text,
          join(repo, "packages", pkg, "src", `${(element.propertyName ?? element.name).text}.ts`)
        )
      }
    }
  }
  return { path, source, modules }
}

// Parameters (by position) of the functions of a file that pass them on to a Config constructor or another helper.
const findHelpers = (file: FileInfo): Map<string, Set<number>> => {
  const helpers = new Map<string, Set<number>>()
  const functions: Array<{ name: string; params: Array<string>; body: ts.Node }> = []
  walk(file.source, (n) => {
    if (
      ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.initializer !== undefined &&
      (ts.isArrowFunction(n.initializer) || ts.isFunctionExpression(n.initializer))
    ) {
      functions.push({
        name: n.name.text,
        params: n.initializer.parameters.map((p) => (ts.isIdentifier(p.name) ? p.name.text : "")),
        body: n.initializer.body
      })
    } else if (ts.isFunctionDeclaration(n) && n.name !== undefined && n.body !== undefined) {
      functions.push({
        name: n.name.text,
        params: n.parameters.map((p) => (ts.isIdentifier(p.name) ? p.name.text : "")),
        body: n.body
      })
    }
  })
  for (let changed = true; changed;) {
    changed = false
    for (const f of functions) {
      walk(f.body, (n) => {
        if (!ts.isCallExpression(n)) return
        const ctor = configCall(n)
        const callee = ts.isIdentifier(n.expression) ? n.expression.text : undefined
        const passes = (ctor !== undefined && isConstructor(ctor)) ||
          (callee !== undefined && helpers.has(callee))
        if (!passes) return
        n.arguments.forEach((arg, i) => {
          if (!ts.isIdentifier(arg)) return
          if (ctor !== undefined && arg !== nameArgument(ctor, n)) return
          if (callee !== undefined && !helpers.get(callee)!.has(i)) return
          const index = f.params.indexOf(arg.text)
          if (index < 0) return
          const set = helpers.get(f.name) ?? new Set<number>()
          if (!set.has(index)) {
            set.add(index)
            helpers.set(f.name, set)
            changed = true
          }
        })
      })
    }
  }
  return helpers
}

// The keys read directly under `node`: constructor and helper arguments.
const keysUnder = (node: ts.Node, helpers: Map<string, Set<number>>): Array<string> => {
  const keys: Array<string> = []
  walk(node, (n) => {
    if (!ts.isCallExpression(n)) return
    const ctor = configCall(n)
    if (ctor !== undefined && isConstructor(ctor)) {
      const s = stringOf(nameArgument(ctor, n))
      if (s !== undefined && isKey(s)) keys.push(s)
    }
    const callee = ts.isIdentifier(n.expression) ? n.expression.text : undefined
    if (callee !== undefined && helpers.has(callee)) {
      for (const i of helpers.get(callee)!) {
        const s = stringOf(n.arguments[i])
        if (s !== undefined && isKey(s)) keys.push(s)
      }
    }
  })
  return keys
}

// `arg` is a parameter of an enclosing function that passes it on as a name (a helper): its callers give the names.
const isHelperParameter = (arg: ts.Node): boolean => {
  if (!ts.isIdentifier(arg)) return false
  for (let fn: ts.Node | undefined = arg.parent; fn !== undefined; fn = fn.parent) {
    if (ts.isArrowFunction(fn) || ts.isFunctionDeclaration(fn) || ts.isFunctionExpression(fn)) {
      if (fn.parameters.some((p) => ts.isIdentifier(p.name) && p.name.text === arg.text)) return true
    }
  }
  return false
}

/** Scans the server's source. */
export const scanConfigKeys = (repo: string): Scan => {
  const packages = reachablePackages(repo)
  const paths = [
    ...sourceFiles(join(repo, "apps/server/src")),
    ...packages.flatMap((p) => sourceFiles(join(repo, "packages", p, "src")))
  ]
  const files = new Map(paths.map((p) => [p, loadFile(repo, p)]))
  const fileOf = (path: string) => {
    const existing = files.get(path)
    if (existing !== undefined) return existing
    if (!existsSync(path)) return undefined
    const loaded = loadFile(repo, path)
    files.set(path, loaded)
    return loaded
  }
  const helpersOf = new Map<string, Map<string, Set<number>>>()
  const helpers = (file: FileInfo) => {
    let found = helpersOf.get(file.path)
    if (found === undefined) {
      found = findHelpers(file)
      helpersOf.set(file.path, found)
    }
    return found
  }
  const names = new Map<string, Set<string>>()
  const add = (name: string, origin: string) => {
    const set = names.get(name) ?? new Set<string>()
    set.add(relative(repo, origin))
    names.set(name, set)
  }
  const unresolved: Array<string> = []

  // `config` declarations: `export const config = ...` of a file; their keys, embedded configs included.
  const declaration = (file: FileInfo, name: string): ts.Node | undefined => {
    let found: ts.Node | undefined
    walk(file.source, (n) => {
      if (found === undefined && ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name) {
        found = n.initializer
      }
    })
    return found
  }
  // `X.config` or `config` as used in `file` → [file of the declaration, its initializer].
  const resolveConfig = (file: FileInfo, expr: ts.Expression): [FileInfo, ts.Node] | undefined => {
    if (ts.isIdentifier(expr)) {
      const init = declaration(file, expr.text)
      return init === undefined ? undefined : [file, init]
    }
    if (ts.isPropertyAccessExpression(expr) && ts.isIdentifier(expr.expression)) {
      const target = file.modules.get(expr.expression.text)
      const other = target === undefined ? undefined : fileOf(target)
      const init = other === undefined ? undefined : declaration(other, expr.name.text)
      return other === undefined || init === undefined ? undefined : [other, init]
    }
    return undefined
  }
  const declarationKeys = (file: FileInfo, init: ts.Node, seen = new Set<ts.Node>()): Array<string> => {
    if (seen.has(init)) return []
    seen.add(init)
    const keys = keysUnder(init, helpers(file))
    walk(init, (n) => {
      if (ts.isPropertyAccessExpression(n) && n.name.text === "config" && ts.isIdentifier(n.expression)) {
        const inner = resolveConfig(file, n)
        if (inner !== undefined) keys.push(...declarationKeys(inner[0], inner[1], seen))
      }
    })
    return keys
  }

  // Nesting sites first: the keys of nested declarations are read under their prefix only.
  const nestedDeclarations = new Set<ts.Node>()
  const nestings: Array<{ file: FileInfo; subject: ts.Expression; prefix: ts.Expression; at: ts.Node }> = []
  for (const file of [...files.values()]) {
    walk(file.source, (n) => {
      if (!ts.isCallExpression(n) || configCall(n) !== "nested") return
      if (n.arguments.length === 2) nestings.push({ file, subject: n.arguments[0]!, prefix: n.arguments[1]!, at: n })
      else if (n.arguments.length === 1) {
        // subject.pipe(Config.nested("P"))
        const pipe = n.parent
        if (
          ts.isCallExpression(pipe) && ts.isPropertyAccessExpression(pipe.expression) &&
          pipe.expression.name.text === "pipe"
        ) {
          nestings.push({ file, subject: pipe.expression.expression, prefix: n.arguments[0]!, at: n })
        } else unresolved.push(`${relative(repo, file.path)}: Config.nested with no subject`)
      }
    })
  }
  const prefixes = (file: FileInfo, prefix: ts.Expression, at: ts.Node): Array<string> | undefined => {
    const literal = stringOf(prefix)
    if (literal !== undefined) return [literal]
    if (
      !ts.isTemplateExpression(prefix) || prefix.templateSpans.length !== 1 ||
      prefix.templateSpans[0]!.literal.text !== ""
    ) {
      return undefined
    }
    // `HEAD${param}` or `HEAD${param.toUpperCase()}` inside a function: the literals it is called with.
    let expr = prefix.templateSpans[0]!.expression
    let upper = false
    if (
      ts.isCallExpression(expr) && ts.isPropertyAccessExpression(expr.expression) &&
      expr.expression.name.text === "toUpperCase"
    ) {
      upper = true
      expr = expr.expression.expression
    }
    if (!ts.isIdentifier(expr)) return undefined
    let fn: ts.Node | undefined = at.parent
    while (
      fn !== undefined && !ts.isArrowFunction(fn) && !ts.isFunctionDeclaration(fn) && !ts.isFunctionExpression(fn)
    ) {
      fn = fn.parent
    }
    if (fn === undefined) return undefined
    const f = fn as ts.ArrowFunction | ts.FunctionDeclaration | ts.FunctionExpression
    const index = f.parameters.findIndex((p) => ts.isIdentifier(p.name) && p.name.text === (expr as ts.Identifier).text)
    const fname = ts.isFunctionDeclaration(f)
      ? f.name?.text
      : ts.isVariableDeclaration(f.parent) && ts.isIdentifier(f.parent.name)
      ? f.parent.name.text
      : undefined
    if (index < 0 || fname === undefined) return undefined
    const values: Array<string> = []
    walk(file.source, (n) => {
      if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === fname) {
        const s = stringOf(n.arguments[index])
        if (s !== undefined) values.push(prefix.head.text + (upper ? s.toUpperCase() : s))
      }
    })
    return values.length > 0 ? values : undefined
  }
  for (const { at, file, prefix, subject } of nestings) {
    const target = resolveConfig(file, subject)
    const heads = prefixes(file, prefix, at)
    if (target === undefined || heads === undefined) {
      unresolved.push(`${relative(repo, file.path)}: Config.nested(${subject.getText()}, ${prefix.getText()})`)
      continue
    }
    nestedDeclarations.add(target[1])
    for (const head of heads) for (const key of declarationKeys(target[0], target[1])) add(`${head}_${key}`, file.path)
  }

  // Top-level keys: every constructor / helper argument outside the nested declarations, and process.env reads.
  for (const file of files.values()) {
    if (!paths.includes(file.path)) continue
    const skip = new Set<ts.Node>([...nestedDeclarations].filter((d) => d.getSourceFile() === file.source))
    const visit = (n: ts.Node) => {
      if (skip.has(n)) return
      if (ts.isCallExpression(n)) {
        const ctor = configCall(n)
        if (ctor !== undefined && isConstructor(ctor)) {
          const nameArg = nameArgument(ctor, n)
          const s = stringOf(nameArg)
          if (s !== undefined && isKey(s)) add(s, file.path)
          else if (nameArg === undefined || !isHelperParameter(nameArg)) {
            unresolved.push(
              `${relative(repo, file.path)}: Config.${ctor}(${n.arguments.map((a) => a.getText()).join(", ")})`
            )
          }
        }
        const callee = ts.isIdentifier(n.expression) ? n.expression.text : undefined
        if (callee !== undefined && helpers(file).has(callee)) {
          for (const i of helpers(file).get(callee)!) {
            const s = stringOf(n.arguments[i])
            if (s !== undefined && isKey(s)) add(s, file.path)
          }
        }
      }
      if (
        ts.isPropertyAccessExpression(n) && ts.isPropertyAccessExpression(n.expression) &&
        n.expression.name.text === "env" && ts.isIdentifier(n.expression.expression) &&
        n.expression.expression.text === "process" && isKey(n.name.text)
      ) {
        add(n.name.text, file.path)
      }
      n.forEachChild(visit)
    }
    visit(file.source)
  }
  return {
    names: new Set(names.keys()),
    origins: new Map([...names].map(([k, v]) => [k, [...v].sort()])),
    unresolved,
    packages
  }
}

/**
 * The variable names of the README's configuration tables (the `## Configuration` section): every backticked
 * ALL_CAPS name, with the shorthands expanded (`BACKUP_KEEP_LAST/DAILY/WEEKLY`); wildcard rows (`OTEL_*`,
 * `RESILIENCE_OLLAMA_*`) are returned as prefixes.
 */
export const readmeNames = (readme: string): { names: Set<string>; prefixes: Set<string> } => {
  const start = readme.indexOf("## Configuration")
  const end = readme.indexOf("\n## ", start + 1)
  const section = readme.slice(start, end < 0 ? undefined : end)
  const names = new Set<string>()
  const prefixes = new Set<string>()
  for (const row of section.split("\n").filter((l) => l.startsWith("|"))) {
    const firstCell = row.split("|")[1] ?? ""
    for (const m of firstCell.matchAll(/`([A-Z][A-Z0-9_]*(?:\/[A-Z0-9_]+)*\*?)`/g)) {
      const token = m[1]!
      if (token.endsWith("*")) {
        prefixes.add(token.slice(0, -1))
        continue
      }
      const [head, ...alternatives] = token.split("/")
      names.add(head!)
      const stem = head!.slice(0, head!.lastIndexOf("_") + 1)
      for (const alt of alternatives) names.add(stem + alt)
    }
  }
  return { names, prefixes }
}
