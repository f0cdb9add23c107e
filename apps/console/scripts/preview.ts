/**
 * Runs the console on the preview of the admin API (`test/preview.ts`: the flags, tenancy and audit packages' own
 * HttpApis on in-memory stores, in this process), for working on the views the server does not serve yet.
 *
 *   npx tsx apps/console/scripts/preview.ts
 */
import { ensureBuilt, keys } from "../test/harness.js"
import { auditVerifierKey, startPreview } from "../test/preview.js"

ensureBuilt()
const preview = await startPreview()
process.stdout.write(
  `console: ${preview.url}/console/\nadmin key: ${keys.admin}\ntenant keys: tenant-a ${keys.tenantA}, tenant-b ${keys.tenantB}\n` +
    `audit verifier key: ${auditVerifierKey}\n`
)
const stop = async () => {
  await preview.stop()
  process.exit(0)
}
process.once("SIGINT", () => void stop())
process.once("SIGTERM", () => void stop())
