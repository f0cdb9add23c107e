import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@ouroboros/event-store"
import { Embedded } from "@ouroboros/vector-store"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Backup, BackupTarget, Scheduler } from "../src/index.js"
import { layerStores, tempDir } from "./helpers.js"

const withConfig = (env: Record<string, string>) =>
  Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))

describe("config", () => {
  it.effect("reads BACKUP_* with defaults", () =>
    Effect.gen(function*() {
      const settings = yield* Effect.gen(function*() {
        return yield* Backup.config
      }).pipe(withConfig({ KEEP_LAST: "3", VERIFY: "checksums" }), withConfig({}))
      assert.strictEqual(settings.keepLast, 3)
      assert.strictEqual(settings.keepDaily, 7)
      assert.strictEqual(settings.schedule, "0 3 * * *")
      assert.strictEqual(settings.verify, "checksums")
      assert.strictEqual(Backup.directoryOf(settings, "/data"), Path.join("/data", "backups"))
      const bad = yield* Effect.exit(Backup.config.pipe(withConfig({ KEEP_WEEKLY: "-1" })))
      assert.isTrue(Exit.isFailure(bad))
    }))

  it.effect("layerConfig writes to BACKUP_DIR, or <dataDir>/backups", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("config")
      const stores = Layer.merge(
        EventStore.layerMemory(),
        Embedded.layer({ directory: Path.join(dataDir, "vectors"), fsync: false })
      )
      const target = yield* BackupTarget.BackupTarget.use((t) => Effect.succeed(t.description)).pipe(
        Effect.provide(Backup.layerConfig({ dataDir }).pipe(Layer.provide(stores))),
        withConfig({})
      )
      assert.strictEqual(target, Path.join(dataDir, "backups"))
      assert.isTrue(Fs.existsSync(target))
      const custom = Path.join(dataDir, "elsewhere")
      const described = yield* BackupTarget.BackupTarget.use((t) => Effect.succeed(t.description)).pipe(
        Effect.provide(Backup.layerConfig({ dataDir }).pipe(Layer.provide(stores))),
        withConfig({ BACKUP_DIR: custom })
      )
      assert.strictEqual(described, custom)
    }))

  it.effect("an invalid schedule is reported at startup", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Scheduler.make({ schedule: "every day", fullEvery: 1, verify: "none" }))
      assert.isTrue(Exit.isFailure(exit))
      assert.include(String(Exit.isFailure(exit) ? exit.cause : ""), "BACKUP_SCHEDULE")
    }).pipe(Effect.provide(Layer.merge(layerStores(), Scheduler.layerLocalLock))))
})
