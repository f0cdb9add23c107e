/**
 * What the documents name: links, repository paths, HTTP endpoints, environment variables, CLI invocations, metric
 * and health-check names, read from the Markdown of docs/. Plain text scanning, on purpose: the documents are
 * written for people, and these patterns are the ones they use (see docs/test/docs.test.ts for what each must match).
 */

/** One Markdown file, split into fenced code blocks and the rest. */
export interface Doc {
  readonly file: string
  readonly text: string
  /** The prose: the file with its fenced code blocks blanked out (line numbers kept). */
  readonly prose: string
  /** The contents of the fenced code blocks, with their info string (`sh`, `mermaid`, ...). */
  readonly blocks: ReadonlyArray<{ readonly info: string; readonly body: string; readonly line: number }>
}

export const parseDoc = (file: string, text: string): Doc => {
  const lines = text.split("\n")
  const prose: Array<string> = []
  const blocks: Array<{ info: string; body: string; line: number }> = []
  let open: { info: string; body: Array<string>; line: number } | undefined
  lines.forEach((line, i) => {
    const fence = /^\s*```(\S*)/.exec(line)
    if (fence !== null) {
      if (open === undefined) open = { info: fence[1] ?? "", body: [], line: i + 1 }
      else {
        blocks.push({ info: open.info, body: open.body.join("\n"), line: open.line })
        open = undefined
      }
      prose.push("")
      return
    }
    if (open !== undefined) {
      open.body.push(line)
      prose.push("")
    } else prose.push(line)
  })
  return { file, text, prose: prose.join("\n"), blocks }
}

/** Inline code spans of the prose (`like this`). */
export const codeSpans = (doc: Doc): Array<string> => [...doc.prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!)

/** `[text](target)` links of the prose. */
export const links = (doc: Doc): Array<string> =>
  [...doc.prose.matchAll(/\[[^\]\n]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!)

/** GitHub's heading anchors of a document (lower case, punctuation dropped, spaces to hyphens, -1 -2 for repeats). */
export const anchors = (doc: Doc): Set<string> => {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const m of doc.prose.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]!
      .replace(/`/g, "")
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-")
    const count = seen.get(base) ?? 0
    seen.set(base, count + 1)
    out.add(count === 0 ? base : `${base}-${count}`)
  }
  return out
}

// ---- repository paths

const roots = /^(?:packages|apps|deploy|docs|test|bench|\.ci)\//
const topFiles = new Set([
  "README.md",
  "Dockerfile",
  "package.json",
  "package-lock.json",
  "vitest.config.ts",
  "flake.nix"
])

/**
 * Repository paths named in code spans and code blocks: tokens that start with a top-level directory of the
 * repository, or are one of its top-level files. Patterns (`*`, `<name>`, `{id}`, `$VAR`) and build outputs
 * (`/dist/`) are not paths of the repository and are left out.
 */
export const repoPaths = (doc: Doc): Array<string> => {
  // `kubectl ... deploy/ouroboros` names a Deployment, not the repository's deploy/ directory.
  const withoutResources = (text: string) =>
    text.split("\n").map((line) =>
      /\bkubectl\b/.test(line)
        ? line.replace(/\b(?:deploy|deployment|svc|service|pod|job|cronjob)\/[a-z0-9-]+(?=\s|$)/g, "")
        : line
    ).join("\n")
  const tokens = [
    ...codeSpans(doc).map(withoutResources).flatMap((span) => span.split(/[\s,;()"'=]+/)),
    ...doc.blocks.filter((b) => b.info !== "mermaid").flatMap((b) => withoutResources(b.body).split(/[\s,;()"'=]+/))
  ]
  const out = new Set<string>()
  for (const raw of tokens) {
    const token = raw.replace(/^\.\//, "").replace(/[.:,;]+$/, "")
    if (token === "" || /[*<>{}$\\]/.test(token) || token.includes("/dist/") || token.includes("://")) continue
    if (roots.test(token) || topFiles.has(token)) out.add(token.replace(/\/$/, ""))
  }
  return [...out]
}

// ---- HTTP endpoints

/** An endpoint as the documents name it: a method when they give one, and the path (no query). */
export interface NamedEndpoint {
  readonly method: string | undefined
  readonly path: string
  readonly where: string
}

const methods = "GET|POST|PUT|PATCH|DELETE"
const pathChars = String.raw`[A-Za-z0-9_.:{}<>%*-]`
const ownRoot = String.raw`(?:/api|/admin|/health|/metrics|/openapi\.json|/docs|/console)`

const cleanPath = (path: string): string =>
  path
    .split("?")[0]!
    .replace(/\/\.\.\.$/, "")
    .replace(/\.\.\.$/, "")
    .replace(/\/\*$/, "")
    .replace(/[.,:;]+$/, "")

/**
 * The server's own endpoints named anywhere in a document: `METHOD /path`, bare `/api/...`, `/admin/...`,
 * `/health/...`, `/metrics`, `/openapi.json`, `/docs`, `/console` paths, and the URLs of curl lines
 * (`$URL/...`, `localhost:8080/...`), whose method is `-X`'s, POST with `-d`, else GET.
 */
export const endpoints = (doc: Doc): Array<NamedEndpoint> => {
  const out: Array<NamedEndpoint> = []
  // A shell command continued with a backslash is one line (its -X or -d may be on the next).
  const lines = doc.text.split("\n").map((line, i, all) => {
    let joined = line
    for (let j = i; all[j]?.trimEnd().endsWith("\\") === true && all[j + 1] !== undefined; j++) {
      joined += ` ${all[j + 1]}`
    }
    return joined
  })
  lines.forEach((line, i) => {
    const where = `${doc.file}:${i + 1}`
    const covered: Array<[number, number]> = []
    for (const m of line.matchAll(new RegExp(String.raw`\b(${methods})\s+(${ownRoot}(?:/${pathChars}*)*)`, "g"))) {
      out.push({ method: m[1]!, path: cleanPath(m[2]!), where })
      covered.push([m.index! + m[1]!.length, m.index! + m[0].length])
    }
    if (/\bcurl\b|\badm\b/.test(line)) {
      const method = /-X\s+([A-Z]+)/.exec(line)?.[1] ?? (/\s(-d|--data)\b/.test(line) ? "POST" : "GET")
      for (
        const m of line.matchAll(
          new RegExp(String.raw`(?:\$URL|localhost:\d+)(/${pathChars}*(?:/${pathChars}*)*)`, "g")
        )
      ) {
        out.push({ method, path: cleanPath(m[1]!), where })
        covered.push([m.index!, m.index! + m[0].length])
      }
    }
    for (const m of line.matchAll(new RegExp(String.raw`(?<![\w/$:.-])(${ownRoot}(?:/${pathChars}*)*)`, "g"))) {
      const at = m.index!
      if (covered.some(([from, to]) => at >= from && at < to)) continue
      // A filesystem path of the container (`/data/...`) or a URL of another host is not ours: both are excluded by
      // the roots above and the look-behind.
      out.push({ method: undefined, path: cleanPath(m[1]!), where })
    }
  })
  return out.filter((e) => e.path !== "")
}

/** Splits a path into segments; `{x}`, `:x` and `<x>` are parameters. */
export const segments = (path: string): Array<string> => path.split("/").filter((s) => s !== "")
export const isParameter = (segment: string) => /^(\{.*\}|:.+|<.*>)$/.test(segment)

/**
 * Whether a documented path names a route: segment by segment, where either side's parameter matches any segment;
 * a documented path may also stop early (a prefix of the route, as in "the `/admin/backups/<id>` endpoints").
 */
export const pathMatches = (documented: string, route: string, prefix = true): boolean => {
  const d = segments(documented)
  const r = segments(route)
  if (d.length > r.length || (!prefix && d.length !== r.length)) return false
  return d.every((segment, i) => {
    const other = r[i]!
    return isParameter(segment) || isParameter(other) || segment.toLowerCase() === other.toLowerCase()
  })
}

// ---- environment variables

const envName = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/

/** Environment variables named: whole code spans (`NAME`, `NAME=value`, `PREFIX_*`), and names in code blocks. */
export const envNames = (doc: Doc): { names: Array<string>; prefixes: Array<string> } => {
  const names = new Set<string>()
  const prefixes = new Set<string>()
  for (const span of codeSpans(doc)) {
    for (const part of span.split(/,\s*/)) {
      const name = part.split("=")[0]!.trim()
      if (envName.test(name)) names.add(name)
      else if (/^[A-Z][A-Z0-9_]*_\*$/.test(name)) prefixes.add(name.slice(0, -1))
    }
  }
  for (const block of doc.blocks) {
    if (block.info === "mermaid" || block.info === "json" || block.info === "sql") continue
    for (const m of block.body.matchAll(/(?<![\w.-])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?![\w-])/g)) names.add(m[1]!)
  }
  return { names: [...names], prefixes: [...prefixes] }
}

// ---- the command line

/** An `ouroboros` invocation: its subcommand path and the flags given. */
export interface CliCall {
  readonly words: ReadonlyArray<string>
  readonly flags: ReadonlyArray<string>
  readonly where: string
}

const parseCall = (rest: string, where: string): CliCall => {
  const tokens = rest.trim().split(/\s+/).filter((t) => t !== "")
  const words: Array<string> = []
  let i = 0
  for (; i < tokens.length && /^[a-z][a-z-]*$/.test(tokens[i]!); i++) words.push(tokens[i]!)
  const flags = tokens.slice(i).filter((t) => t.startsWith("--")).map((t) => t.split("=")[0]!)
  return { words, flags, where }
}

/** Invocations of the CLI: `node apps/server/dist/cli.js ...` anywhere, and code spans `ouroboros <subcommand> ...`. */
export const cliCalls = (doc: Doc): Array<CliCall> => {
  const out: Array<CliCall> = []
  doc.text.split("\n").forEach((line, i) => {
    for (const m of line.matchAll(/apps\/server\/dist\/cli\.js((?:\s+[^\s|;&`"')]+)*)/g)) {
      out.push(parseCall(m[1] ?? "", `${doc.file}:${i + 1}`))
    }
  })
  for (const span of codeSpans(doc)) {
    const m = /^ouroboros\s+([a-z].*)$/.exec(span)
    if (m !== null) out.push(parseCall(m[1]!, doc.file))
  }
  return out.filter((call) => call.words.length > 0)
}

// ---- names the code defines

/** Metric names (with a prefix of ours) in code spans, label sets dropped. */
export const metricNames = (doc: Doc): Array<string> => {
  const out = new Set<string>()
  for (const span of codeSpans(doc)) {
    const m =
      /^((?:circuit_breaker|ratelimit|http_server|audit|feature_flag|api_version)_[a-z0-9_]+)(\{.*\})?(\s+\d+)?$/
        .exec(span)
    // Table names share the prefixes (`audit_entries`, `feature_flag_kills`): a metric has labels or a metric suffix.
    if (m !== null && (m[2] !== undefined || /_(total|seconds|bytes|state|entries|requests)$/.test(m[1]!))) {
      out.add(m[1]!)
    }
  }
  return [...out]
}

/** Health check keys (`component:measurement`) in code spans. */
export const healthChecks = (
  doc: Doc
): Array<string> => [...new Set(codeSpans(doc).filter((s) => /^[a-z][a-z-]*:[a-z][a-zA-Z]+$/.test(s)))]
