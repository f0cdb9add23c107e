// Builds the console into dist/: the application bundled and minified by esbuild under content-hashed names
// (assets/app-<hash>.js, assets/app-<hash>.css, assets/icon-<hash>.svg), index.html, a Brotli (.br) and a gzip (.gz)
// copy of every file that compresses, and manifest.json, which `ConsoleHttp` serves from. No CDN: everything the
// page loads is in dist/.
//
//   node apps/console/build.mjs            build
//   node apps/console/build.mjs --base=/ops/console/   build for another mount path (ConsoleHttp also rewrites it)
import { build } from "esbuild"
import { createHash } from "node:crypto"
import { mkdir, readFile, rm, writeFile } from "node:fs/promises"
import { basename, dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { brotliCompressSync, constants as zlib, gzipSync } from "node:zlib"

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, "dist")
const assets = join(out, "assets")
const baseArgument = process.argv.find((a) => a.startsWith("--base="))
const base = (baseArgument?.slice("--base=".length) ?? "/console/").replace(/\/?$/, "/")

const sha256 = (bytes) => createHash("sha256").update(bytes).digest()
const shortHash = (bytes) => sha256(bytes).toString("base64url").slice(0, 12)

await rm(out, { recursive: true, force: true })
await mkdir(assets, { recursive: true })

const result = await build({
  entryPoints: { app: join(here, "src/web/main.tsx") },
  bundle: true,
  // The workspace packages from their TypeScript sources (their `exports` point at dist/ otherwise).
  conditions: ["@ouroboros/source"],
  format: "esm",
  splitting: false,
  minify: true,
  target: ["chrome111", "edge111", "firefox115", "safari16.4"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: assets,
  entryNames: "[name]-[hash]",
  assetNames: "[name]-[hash]",
  sourcemap: "linked",
  legalComments: "none",
  metafile: true,
  define: { "process.env.NODE_ENV": "\"production\"" },
  logLevel: "warning"
})

const outputs = Object.keys(result.metafile.outputs).map((file) => join(process.cwd(), file))
const find = (extension) => {
  const file = outputs.find((f) => f.endsWith(extension) && !f.endsWith(".map"))
  if (file === undefined) throw new Error(`esbuild produced no ${extension} file`)
  return relative(out, file).split("\\").join("/")
}
const script = find(".js")
const stylesheet = find(".css")

// The icon: a ring, as the snake that eats its tail.
const iconSvg =
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><circle cx="16" cy="16" r="11" fill="none" stroke="#0b57d0" stroke-width="5"/><circle cx="24" cy="9" r="3" fill="#0b57d0"/></svg>\n`
const icon = `assets/icon-${shortHash(iconSvg)}.svg`
await writeFile(join(out, icon), iconSvg)

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>Ouroboros console</title>
<base href="${base}">
<link rel="icon" href="${icon}" type="image/svg+xml">
<link rel="stylesheet" href="${stylesheet}">
<script type="module" src="${script}"></script>
</head>
<body>
<div id="app"></div>
<noscript><p>The Ouroboros console needs JavaScript.</p></noscript>
</body>
</html>
`
await writeFile(join(out, "index.html"), html)

const contentTypes = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".map": "application/json; charset=utf-8"
}
const extensionOf = (file) => file.slice(file.lastIndexOf("."))

const files = {}
for (const file of ["index.html", script, stylesheet, icon, `${script}.map`, `${stylesheet}.map`]) {
  const bytes = await readFile(join(out, file)).catch(() => undefined)
  if (bytes === undefined) continue
  const encodings = {}
  const brotli = brotliCompressSync(bytes, {
    params: {
      [zlib.BROTLI_PARAM_QUALITY]: zlib.BROTLI_MAX_QUALITY,
      [zlib.BROTLI_PARAM_MODE]: zlib.BROTLI_MODE_TEXT,
      [zlib.BROTLI_PARAM_SIZE_HINT]: bytes.length
    }
  })
  const gzip = gzipSync(bytes, { level: 9 })
  // A compressed copy is kept only when it is smaller.
  if (brotli.length < bytes.length) {
    await writeFile(join(out, `${file}.br`), brotli)
    encodings.br = brotli.length
  }
  if (gzip.length < bytes.length) {
    await writeFile(join(out, `${file}.gz`), gzip)
    encodings.gzip = gzip.length
  }
  files[file] = {
    contentType: contentTypes[extensionOf(file)] ?? "application/octet-stream",
    bytes: bytes.length,
    sha256: sha256(bytes).toString("base64"),
    immutable: file.startsWith("assets/"),
    encodings
  }
}

const manifest = { version: 1, base, index: "index.html", script, stylesheet, files }
await writeFile(join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`)

const js = files[script]
console.log(
  `console: ${basename(script)} ${js.bytes} B (gzip ${js.encodings.gzip} B, br ${js.encodings.br} B), ` +
    `${basename(stylesheet)} ${files[stylesheet].bytes} B (gzip ${files[stylesheet].encodings.gzip} B) → ${
      relative(process.cwd(), out)
    }`
)
