// Type-checks the `@example` blocks of the TSDoc in the publishable packages' sources (`packages/*/src`, and
// `apps/server/src`), as a consumer would compile them. `npm run check:examples`; packaging/test/examples.test.ts runs
// it under vitest.
//
// An example is a complete module, as in the Effect monorepo's docgen: it imports what it uses (`@ouroboros/*` by its
// public specifier, resolved to the workspace's sources through the `@ouroboros/source` condition; `effect` from
// node_modules) and declares what it does not define (`declare const api: …`). It runs from its `@example` tag to the
// next tag or the end of the comment, as bare code or as one fenced block (```ts … ```); inside bare code a line
// starting with `@` ends it. Each example is written to its own module under build/tsdoc-examples/ (named
// `<package>/<Module>.<declaration>.ts`), and all of them are type-checked in one TypeScript program with the options
// `tsc --init` writes (strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess, verbatimModuleSyntax, …) plus
// Node's types. Each error is printed at its place in the source comment (file:line:column); the exit code is 1 when
// any example fails.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { basename, dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { packageDirs, root, sourceCondition } from "./manifest.mjs"

const ts = createRequire(import.meta.url)("typescript")

/** Where the examples are written (gitignored, like all of build/). */
export const scratch = join(root, "build", "tsdoc-examples")

/** The folders whose sources are scanned, each with the name its examples are filed under. */
export const sourceRoots = () => [
  ...packageDirs().map((dir) => ({ name: basename(dir), src: join(dir, "src") })),
  { name: "server", src: join(root, "apps", "server", "src") }
]

/**
 * A consumer's compiler options: what `tsc --init` (TypeScript 5.9) writes, with Node's types, no emit, and the
 * workspace's source condition so that `@ouroboros/*` resolves to `src/`.
 */
export const compilerOptions = {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ESNext,
  types: ["node"],
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  verbatimModuleSyntax: true,
  isolatedModules: true,
  noUncheckedSideEffectImports: true,
  moduleDetection: ts.ModuleDetectionKind.Force,
  skipLibCheck: true,
  // For unused imports only (see `unusedCodes`): an example's own bindings are often there to be read, not used.
  noUnusedLocals: true,
  noEmit: true,
  customConditions: [sourceCondition]
}

/** "declared but never read" and its variants: reported for imports, ignored for an example's own bindings. */
const unusedCodes = new Set([6133, 6138, 6192, 6196, 6198, 6199, 6205])

const walk = (dir) => {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch {
    return []
  }
  return entries.flatMap((entry) => entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)])
}

const lineOf = (text, pos) => {
  let line = 0
  for (let i = text.indexOf("\n"); i !== -1 && i < pos; i = text.indexOf("\n", i + 1)) line++
  return line
}

const nameOf = (node) => {
  if (ts.isVariableStatement(node)) return node.declarationList.declarations.map((d) => d.name.getText()).join(",")
  if (ts.isExportAssignment(node)) return "default"
  if (ts.isVariableDeclaration(node)) return undefined // named by its statement
  const name = ts.getNameOfDeclaration(node)
  if (name === undefined) return undefined
  return ts.isIdentifier(name) || ts.isPrivateIdentifier(name) || ts.isStringLiteral(name) ? name.text : undefined
}

/** The declaration a comment documents, with its enclosing declarations: `Policy`, `Store.get`. */
const declarationPath = (node) => {
  const names = []
  for (let current = node; current !== undefined && !ts.isSourceFile(current); current = current.parent) {
    const name = nameOf(current)
    if (name !== undefined && name !== "") names.unshift(name)
  }
  return names.length === 0 ? "module" : names.join(".")
}

/**
 * The examples of one JSDoc comment that starts at line `firstLine`, column `firstColumn` (both 0-based) of its file:
 * for each, its code and, for each of its lines, the source line and the column (0-based) where the code line starts.
 */
export const parseComment = (comment, firstLine, firstColumn = 0) => {
  const raw = comment.replace(/^\/\*\*/, "").replace(/\*\/$/, "").split("\n")
  const lines = raw.map((text, index) => {
    const prefix = index === 0 ? "/**" : (/^\s*\* ?/.exec(text)?.[0] ?? /^\s*/.exec(text)[0])
    const content = index === 0 ? text.replace(/^ /, "") : text.slice(prefix.length)
    const column = index === 0 ? firstColumn + (text.startsWith(" ") ? 4 : 3) : prefix.length
    return { content: content.replace(/\s+$/, ""), line: firstLine + index, column }
  })
  const examples = []
  let current
  let fenced = false
  for (const line of lines) {
    const tag = fenced ? null : /^\s*@(\w+)(.*)$/.exec(line.content)
    if (tag !== null) {
      if (current !== undefined) examples.push(current)
      const rest = tag[2].trim()
      const onTagLine = { ...line, content: rest, column: line.column + line.content.lastIndexOf(rest) }
      current = tag[1] === "example" ? { line: line.line, body: rest === "" ? [] : [onTagLine] } : undefined
      continue
    }
    if (/^\s*```/.test(line.content)) fenced = !fenced
    if (current !== undefined) current.body.push(line)
  }
  if (current !== undefined) examples.push(current)
  return examples.map(({ body, line }) => {
    const open = body.findIndex((l) => /^\s*```/.test(l.content))
    if (open === -1) return { line, code: trim(body) }
    const close = body.findIndex((l, index) => index > open && /^\s*```/.test(l.content))
    const language = body[open].content.trim().slice(3).trim()
    if (close === -1) return { line, code: [], error: "a fenced block that is not closed" }
    if (body.slice(close + 1).some((l) => /^\s*```/.test(l.content))) {
      return { line, code: [], error: "more than one fenced block: one example, one block" }
    }
    if (!["", "ts", "typescript"].includes(language)) {
      return { line, code: [], error: `a fenced block in ${language}, not TypeScript` }
    }
    const indent = Math.min(
      ...body.slice(open + 1, close).filter((l) => l.content.trim() !== "").map((l) => /^\s*/.exec(l.content)[0].length)
    )
    const code = body.slice(open + 1, close).map((l) => ({
      ...l,
      content: l.content.slice(Math.min(indent, /^\s*/.exec(l.content)[0].length)),
      column: l.column + indent
    }))
    return { line, code: trim(code) }
  })
}

const trim = (lines) => {
  let start = 0
  let end = lines.length
  while (start < end && lines[start].content.trim() === "") start++
  while (end > start && lines[end - 1].content.trim() === "") end--
  return lines.slice(start, end)
}

/** Every `@example` in the sources: where it is, what it documents, its code. */
export const collectExamples = (roots = sourceRoots()) => {
  const examples = []
  for (const { name: pkg, src } of roots) {
    for (const file of walk(src).filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts")).sort()) {
      const text = readFileSync(file, "utf8")
      if (!text.includes("@example")) continue
      const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
      const module = relative(src, file).replaceAll("\\", "/").slice(0, -3)
      const seen = new Set()
      let found = 0
      const visit = (node) => {
        for (const range of ts.getLeadingCommentRanges(text, node.pos) ?? []) {
          if (seen.has(range.pos)) continue
          seen.add(range.pos)
          const comment = text.slice(range.pos, range.end)
          if (range.kind !== ts.SyntaxKind.MultiLineCommentTrivia || !comment.startsWith("/**")) continue
          if (!comment.includes("@example")) continue
          const declaration = declarationPath(node)
          const start = lineOf(text, range.pos)
          const column = range.pos - (text.lastIndexOf("\n", range.pos - 1) + 1)
          for (const example of parseComment(comment, start, column)) {
            found++
            examples.push({ pkg, module, declaration, file, ...example })
          }
        }
        ts.forEachChild(node, visit)
      }
      ts.forEachChild(source, visit)
      // A doc comment attached to no node (before a closing brace, say) is not seen above: say so rather than skip it.
      const tags = text.split("\n").filter((line) => /^\s*\*?\s*@example\b/.test(line)).length
      if (found < tags) {
        examples.push({
          pkg,
          module,
          declaration: "module",
          file,
          line: 0,
          code: [],
          error: `${tags - found} @example tag(s) outside a declaration's doc comment`
        })
      }
    }
  }
  return examples
}

/** Writes each example to its module under `dir` and type-checks them all in one program. */
export const checkExamples = ({ dir = scratch, roots = sourceRoots() } = {}) => {
  const started = performance.now()
  const examples = collectExamples(roots)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  // ES modules wherever the folder is (a consumer's package is "type": "module"; the examples use top-level await).
  writeFileSync(join(dir, "package.json"), "{ \"type\": \"module\" }\n")
  const byFile = new Map()
  const paths = new Set()
  const failures = []
  for (const example of examples) {
    const base = join(dir, example.pkg, `${example.module}.${example.declaration}`)
    let path = `${base}.ts`
    for (let n = 2; paths.has(path); n++) path = `${base}-${n}.ts`
    paths.add(path)
    example.path = path
    if (example.error !== undefined) {
      failures.push({ example, line: example.line, column: 0, message: example.error })
      continue
    }
    if (example.code.length === 0) {
      failures.push({ example, line: example.line, column: 0, message: "an empty example" })
      continue
    }
    byFile.set(path, example)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, example.code.map((line) => line.content).join("\n") + "\n")
  }
  const program = ts.createProgram([...byFile.keys()], compilerOptions)
  for (const diagnostic of [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]) {
    failures.push({ example: undefined, line: 0, column: 0, message: flatten(diagnostic) })
  }
  for (const [path, example] of byFile) {
    const file = program.getSourceFile(path)
    const imports = file.statements.filter(ts.isImportDeclaration)
    const inImport = (position) => imports.some((node) => node.getStart(file) <= position && position < node.end)
    if (imports.length === file.statements.length) {
      failures.push({
        example,
        line: example.code[0].line,
        column: example.code[0].column,
        message: "no code: an example shows a call, not only imports and comments"
      })
    }
    const diagnostics = [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)].filter(
      (diagnostic) =>
        !unusedCodes.has(diagnostic.code) || (diagnostic.start !== undefined && inImport(diagnostic.start))
    )
    for (const diagnostic of diagnostics) {
      const at = diagnostic.start === undefined
        ? { line: 0, character: 0 }
        : file.getLineAndCharacterOfPosition(diagnostic.start)
      const code = example.code[Math.min(at.line, example.code.length - 1)]
      failures.push({ example, line: code.line, column: code.column + at.character, message: flatten(diagnostic) })
    }
  }
  return { examples, failures, millis: Math.round(performance.now() - started) }
}

const flatten = (diagnostic) =>
  `TS${diagnostic.code}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n  ")}`

/** One failure as `file:line:column example of Declaration (scratch module): message`, paths from the root. */
export const formatFailure = ({ column, example, line, message }) =>
  example === undefined
    ? message
    : `${relative(root, example.file)}:${line + 1}:${column + 1} example of ${example.declaration} ` +
      `(${relative(root, example.path)}): ${message}`

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { examples, failures, millis } = checkExamples()
  for (const failure of failures) console.error(formatFailure(failure))
  const failed = new Set(failures.map((failure) => failure.example)).size
  console.log(
    `${examples.length} examples type-checked in ${millis} ms: ${failed === 0 ? "all pass" : `${failed} failing`}`
  )
  if (failures.length > 0) process.exit(1)
}
