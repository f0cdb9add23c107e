/**
 * A small Dockerfile parser for the instructions the repository's Dockerfile uses: FROM (with `AS`), ARG, ENV,
 * WORKDIR, COPY (with `--from`), RUN (shell or exec form, with `--mount` flags), USER, VOLUME, EXPOSE, STOPSIGNAL,
 * HEALTHCHECK and CMD / ENTRYPOINT. It follows the Dockerfile reference where it matters here: `\` continues a line,
 * comment lines (also inside a continued instruction) are dropped, exec form is a JSON array of strings, `${VAR}` and
 * `$VAR` are replaced by ARG (global ones in FROM) and ENV values, and ENV takes `K=V ...` or the legacy `K V`.
 * Anything it does not know fails loudly rather than being misread.
 */

/** One instruction, its `--flag=value` options and its arguments in exec form (JSON) or shell form. */
export interface Instruction {
  readonly keyword: string
  readonly line: number
  readonly flags: ReadonlyArray<{ readonly name: string; readonly value: string }>
  /** Exec form: the JSON array. */
  readonly exec?: ReadonlyArray<string>
  /** Shell form, or the raw arguments of a non-command instruction (after variable substitution). */
  readonly text: string
}

export interface Healthcheck {
  readonly options: Readonly<Record<string, string>>
  readonly exec?: ReadonlyArray<string>
  readonly shell?: string
}

/** One build stage, with what its instructions amount to. */
export interface Stage {
  readonly index: number
  readonly name: string | undefined
  readonly image: string
  readonly instructions: ReadonlyArray<Instruction>
  /** ENV set in this stage (not the base image's), in order, after substitution. */
  readonly env: Readonly<Record<string, string>>
  /** The WORKDIR in effect at the end of the stage ("/" when none). */
  readonly workdir: string
  readonly user: string | undefined
  readonly volumes: ReadonlyArray<string>
  readonly expose: ReadonlyArray<string>
  readonly stopSignal: string | undefined
  readonly healthcheck: Healthcheck | "NONE" | undefined
  readonly cmd: Instruction | undefined
  readonly entrypoint: Instruction | undefined
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: Readonly<Record<string, string>>
  readonly stages: ReadonlyArray<Stage>
}

const known = new Set([
  "FROM",
  "ARG",
  "ENV",
  "WORKDIR",
  "COPY",
  "RUN",
  "USER",
  "VOLUME",
  "EXPOSE",
  "STOPSIGNAL",
  "HEALTHCHECK",
  "CMD",
  "ENTRYPOINT",
  "LABEL"
])

/** Logical lines: continuations joined, comments and blank lines dropped, each with its first physical line. */
export const logicalLines = (text: string): Array<{ line: number; text: string }> => {
  const out: Array<{ line: number; text: string }> = []
  let current: { line: number; text: string } | undefined
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim()
    if (trimmed.startsWith("#")) return // a comment, also in the middle of a continued instruction
    if (current === undefined && trimmed === "") return
    const continued = /\\\s*$/.test(raw)
    const piece = continued ? raw.replace(/\\\s*$/, "") : raw
    if (current === undefined) current = { line: i + 1, text: piece.trim() }
    else current.text += " " + piece.trim()
    if (!continued) {
      out.push(current)
      current = undefined
    }
  })
  if (current !== undefined) out.push(current)
  return out
}

/** Splits shell-like words: quotes group, backslash escapes (enough for ENV, ARG, flags). */
export const words = (text: string): Array<string> => {
  const out: Array<string> = []
  let word = ""
  let inWord = false
  let quote: "'" | "\"" | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote !== undefined) {
      if (c === quote) quote = undefined
      else if (c === "\\" && quote === "\"" && i + 1 < text.length) word += text[++i]
      else word += c
    } else if (c === "'" || c === "\"") {
      quote = c
      inWord = true
    } else if (c === "\\" && i + 1 < text.length) {
      word += text[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) out.push(word)
      word = ""
      inWord = false
    } else {
      word += c
      inWord = true
    }
  }
  if (quote !== undefined) throw new Error(`unterminated quote in: ${text}`)
  if (inWord) out.push(word)
  return out
}

/** `${NAME}`, `${NAME:-default}` and `$NAME` from `vars`; unknown names become "" as in Docker. */
export const substitute = (text: string, vars: Readonly<Record<string, string>>): string =>
  text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a, d, b) => {
    const name = (a ?? b) as string
    const value = vars[name]
    return value !== undefined && value !== "" ? value : (d as string | undefined) ?? ""
  })

const takeFlags = (rest: string) => {
  const flags: Array<{ name: string; value: string }> = []
  let remaining = rest
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(remaining)
    if (m === null) break
    flags.push({ name: m[1]!, value: m[2] ?? "" })
    remaining = remaining.slice(m[0].length)
  }
  return { flags, remaining }
}

const execForm = (text: string): Array<string> | undefined => {
  if (!text.trimStart().startsWith("[")) return undefined
  try {
    const parsed: unknown = JSON.parse(text)
    if (Array.isArray(parsed) && parsed.every((s) => typeof s === "string")) return parsed as Array<string>
  } catch {
    // Docker runs a malformed JSON array in shell form; so do we.
  }
  return undefined
}

/** The `KEY=value` pairs of an ENV instruction's text (or the legacy `KEY value`). */
export const parseEnv = (text: string): Array<[string, string]> => {
  const parts = words(text)
  if (parts.length >= 1 && !parts[0]!.includes("=")) {
    // Legacy form: ENV KEY value with spaces
    const key = parts[0]!
    return [[key, text.trim().slice(text.trim().indexOf(key) + key.length).trim()]]
  }
  return parts.map((p) => {
    const at = p.indexOf("=")
    if (at <= 0) throw new Error(`ENV: not KEY=value: ${p}`)
    return [p.slice(0, at), p.slice(at + 1)]
  })
}

/** Parses a Dockerfile. */
export const parseDockerfile = (text: string): Dockerfile => {
  const globalArgs: Record<string, string> = {}
  const stages: Array<Stage> = []
  let stage:
    | {
      index: number
      name: string | undefined
      image: string
      instructions: Array<Instruction>
      env: Record<string, string>
      args: Record<string, string>
      workdir: string
      user: string | undefined
      volumes: Array<string>
      expose: Array<string>
      stopSignal: string | undefined
      healthcheck: Healthcheck | "NONE" | undefined
      cmd: Instruction | undefined
      entrypoint: Instruction | undefined
    }
    | undefined
  const finish = () => {
    if (stage !== undefined) {
      const { args: _args, ...rest } = stage
      stages.push(rest)
    }
  }
  for (const { line, text: logical } of logicalLines(text)) {
    const m = /^([A-Za-z]+)\s*(.*)$/.exec(logical)
    if (m === null) throw new Error(`line ${line}: not an instruction: ${logical}`)
    const keyword = m[1]!.toUpperCase()
    if (!known.has(keyword)) throw new Error(`line ${line}: ${keyword} is not handled by this parser`)
    const vars = stage === undefined ? globalArgs : { ...stage.args, ...stage.env }
    if (keyword === "ARG") {
      const [name, ...value] = m[2]!.trim().split("=")
      const def = value.length > 0 ? substitute(value.join("="), vars) : undefined
      if (stage === undefined) globalArgs[name!] = def ?? ""
      else stage.args[name!] = def ?? globalArgs[name!] ?? ""
      continue
    }
    const { flags, remaining } = takeFlags(m[2]!)
    if (keyword === "FROM") {
      finish()
      const parts = words(substitute(remaining, globalArgs))
      const name = parts.length === 3 && parts[1]!.toUpperCase() === "AS" ? parts[2] : undefined
      if (parts.length !== 1 && name === undefined) throw new Error(`line ${line}: FROM image [AS name]`)
      stage = {
        index: stages.length,
        name,
        image: parts[0]!,
        instructions: [],
        env: {},
        args: {},
        workdir: "/",
        user: undefined,
        volumes: [],
        expose: [],
        stopSignal: undefined,
        healthcheck: undefined,
        cmd: undefined,
        entrypoint: undefined
      }
      stage.instructions.push({ keyword, line, flags, text: remaining })
      continue
    }
    if (stage === undefined) throw new Error(`line ${line}: ${keyword} before FROM`)
    const exec = keyword === "RUN" || keyword === "CMD" || keyword === "ENTRYPOINT" ? execForm(remaining) : undefined
    // Commands keep their text as written (the shell expands at run time); other instructions are substituted.
    const substituted = keyword === "RUN" || keyword === "CMD" || keyword === "ENTRYPOINT" || keyword === "HEALTHCHECK"
      ? remaining
      : substitute(remaining, vars)
    const instruction: Instruction = exec === undefined
      ? { keyword, line, flags, text: substituted }
      : { keyword, line, flags, exec, text: substituted }
    stage.instructions.push(instruction)
    switch (keyword) {
      case "ENV":
        for (const [k, v] of parseEnv(substituted)) stage.env[k] = v
        break
      case "WORKDIR": {
        const dir = substituted.trim()
        stage.workdir = dir.startsWith("/") ? dir : `${stage.workdir.replace(/\/$/, "")}/${dir}`
        break
      }
      case "USER":
        stage.user = substituted.trim()
        break
      case "VOLUME": {
        const json = execForm(substituted)
        stage.volumes.push(...(json ?? words(substituted)))
        break
      }
      case "EXPOSE":
        stage.expose.push(...words(substituted))
        break
      case "STOPSIGNAL":
        stage.stopSignal = substituted.trim()
        break
      case "CMD":
        stage.cmd = instruction
        break
      case "ENTRYPOINT":
        stage.entrypoint = instruction
        break
      case "HEALTHCHECK": {
        if (remaining.trim().toUpperCase() === "NONE") {
          stage.healthcheck = "NONE"
          break
        }
        const cmd = /^CMD\s+(.*)$/i.exec(remaining.trim())
        if (cmd === null) throw new Error(`line ${line}: HEALTHCHECK [options] CMD ... | NONE`)
        const options = Object.fromEntries(flags.map((f) => [f.name, f.value]))
        const hcExec = execForm(cmd[1]!)
        stage.healthcheck = hcExec === undefined ? { options, shell: cmd[1]! } : { options, exec: hcExec }
        break
      }
    }
  }
  finish()
  return { globalArgs, stages }
}

/** The stage named `name` (or with that index). */
export const stageOf = (file: Dockerfile, name: string): Stage => {
  const found = file.stages.find((s) => s.name === name || String(s.index) === name)
  if (found === undefined) throw new Error(`no stage ${name}`)
  return found
}

/**
 * A `.dockerignore` as a predicate: whether a path (relative to the context, `/`-separated) is left out of the
 * build context. Docker's rules: patterns are matched from the context root (a leading `/` is dropped), `*` and `?`
 * stay within one path segment, `**` spans any number of segments, a pattern that matches a directory leaves out
 * everything below it, `!` re-includes, and the last matching line wins.
 */
export const dockerignore = (text: string): (path: string) => boolean => {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((line) => {
      const negate = line.startsWith("!")
      const pattern = posixClean(negate ? line.slice(1) : line)
      let source = ""
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!
        if (c === "*" && pattern[i + 1] === "*") {
          source += pattern[i + 2] === "/" ? "(?:.*/)?" : ".*"
          i += pattern[i + 2] === "/" ? 2 : 1
        } else if (c === "*") source += "[^/]*"
        else if (c === "?") source += "[^/]"
        else source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&")
      }
      return { negate, regex: new RegExp(`^${source}(?:/.*)?$`) }
    })
  return (path) => {
    let excluded = false
    for (const rule of rules) if (rule.regex.test(path)) excluded = !rule.negate
    return excluded
  }
}

const posixClean = (pattern: string) => pattern.replace(/^\/+/, "").replace(/\/+$/, "")
