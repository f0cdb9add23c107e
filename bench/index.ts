/**
 * `npm run bench [-- name ...]`: runs every benchmark (or the named ones) in sequence; each prints ours beside the
 * peer library measured in the same run.
 */
const all = [
  "http",
  "auth",
  "circuit-breaker",
  "rate-limit",
  "tracing",
  "event-store",
  "vector-store",
  "backup"
] as const

const wanted = process.argv.slice(2)
const selected = wanted.length === 0 ? all : all.filter((name) => wanted.includes(name))
if (selected.length === 0) {
  console.error(`unknown benchmark; choose from: ${all.join(", ")}`)
  process.exit(2)
}
for (const name of selected) {
  console.log(`\n=== ${name} ===`)
  // Not a literal, so that the bundler leaves each benchmark its own entry point (bench/build.mjs).
  const path = `./${name}.js`
  const module = (await import(path)) as { default: () => Promise<void> }
  await module.default()
}
process.exit(0)
