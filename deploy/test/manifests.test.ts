/**
 * The Kubernetes manifests: each overlay rendered with `kubectl kustomize`, every object validated against the
 * Kubernetes schemas (kubernetes-models) with no unknown field, and the objects held to the server's contract:
 *
 * - the probes ask the server's health routes (read from packages/health) on the port the server listens on (PORT
 *   of the ConfigMap, or the default read from ServerConfig.ts), which is the container port;
 * - terminationGracePeriodSeconds exceeds preStop + SHUTDOWN_DRAIN_MS + idle grace + SHUTDOWN_TIMEOUT_MS +
 *   SHUTDOWN_FINALIZER_TIMEOUT_MS + trace flush, as that overlay's ConfigMap sets them (defaults read from
 *   packages/shutdown), plus a margin;
 * - every environment variable the manifests give a container is one the server reads (lib/config-keys.ts scans
 *   the source for them; the README's tables are compared and the differences printed);
 * - the NetworkPolicies let the pods reach the port of every service URL the overlay configures, DNS, and nothing
 *   else, and let in the server's port;
 * - the restricted Pod Security Standard: non-root (the Dockerfile's user), read-only root filesystem with DATA_DIR
 *   and /tmp on volumes, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault;
 * - Service, PodDisruptionBudget, HorizontalPodAutoscaler and ServiceMonitor select and name what they should.
 *
 * kubectl is needed (`kubectl kustomize`); without it these tests are skipped with a message, except under CI=true
 * where that is a failure, as the repository's PostgreSQL and Redis tests do.
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { beforeAll, describe, expect, it } from "vitest"
import { readmeNames, type Scan, scanConfigKeys } from "./lib/config-keys.js"
import { parseDockerfile } from "./lib/dockerfile.js"
import {
  type K8sObject,
  kustomize,
  selects,
  serviceMonitorProblems,
  unknownFields,
  validateModel
} from "./lib/kubernetes.js"

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const read = (path: string) => readFileSync(join(repo, path), "utf8")
const overlays = readdirSync(join(repo, "deploy/overlays")).sort()

// ---- the server's contract, read from its source

const healthRoutes = new Set(
  [...read("packages/health/src/HealthHttp.ts").matchAll(/HttpApiEndpoint\.get\("(\w+)",\s*"(\/health\/\w+)"/g)]
    .map((m) => m[2]!)
)
const metricsPath = /path:\s*"([^"]+)"/.exec(read("apps/server/src/Metrics.ts"))?.[1]
const defaultPort = Number(
  /"PORT"\s*\)\.pipe\(Config\.withDefault\((\d+)\)\)/.exec(read("apps/server/src/ServerConfig.ts"))?.[1]
)
const shutdownDefaults = Object.fromEntries(
  [...read("packages/shutdown/src/Shutdown.ts").matchAll(/millis\("(SHUTDOWN_\w+)",\s*(\d+)\)/g)].map((
    m
  ) => [m[1]!, Number(m[2])])
)
// From packages/shutdown/README.md: half a second between closing the listener and closing idle connections, and at
// most one second to flush traces after the finalizers (Tracing.layer). The margin covers signal delivery and a busy
// event loop.
const idleGraceSeconds = 0.5
const traceFlushSeconds = 1
const marginSeconds = 5
const imageUser = parseDockerfile(read("Dockerfile")).stages.at(-1)!.user!
const imageUid = Number(imageUser.split(":")[0])
// The backup CronJob runs the CLI (apps/server/src/cli.ts), which opens only the stores: the SQL database, the
// vector store and the breakers' Redis; it has no models and no tracer, so no Ollama and no OTLP collector, even
// though it shares the server's ConfigMap. Checked against cli.ts below.
const cliServices = new Set(["DATABASE_URL", "QDRANT_URL", "REDIS_URL"])
const defaultPortsByScheme: Record<string, number> = {
  postgres: 5432,
  postgresql: 5432,
  redis: 6379,
  rediss: 6379,
  http: 80,
  https: 443
}

let scan: Scan
const rendered = new Map<string, Array<K8sObject>>()
let kubectlMissing = false

beforeAll(() => {
  scan = scanConfigKeys(repo)
  for (const overlay of overlays) {
    const objects = kustomize(join(repo, "deploy/overlays", overlay))
    if (objects === undefined) {
      kubectlMissing = true
      break
    }
    rendered.set(overlay, objects)
  }
  if (kubectlMissing) {
    if (process.env.CI === "true") throw new Error("kubectl is not installed (needed for `kubectl kustomize`)")
    console.warn("kubectl is not installed: the manifest tests are skipped")
  }
})

// ---- helpers over rendered objects

const ofKind = (objects: Array<K8sObject>, kind: string) => objects.filter((o) => o.kind === kind)
const one = (objects: Array<K8sObject>, kind: string, name?: string) => {
  const found = ofKind(objects, kind).filter((o) => name === undefined || o.metadata.name === name)
  expect(found.length, `one ${kind}${name ? ` ${name}` : ""}`).toBe(1)
  return found[0]!
}

interface PodOwner {
  readonly owner: K8sObject
  readonly template: { metadata: { labels: Record<string, string> }; spec: any }
}
const podOwners = (objects: Array<K8sObject>): Array<PodOwner> => [
  ...ofKind(objects, "Deployment").map((o) => ({ owner: o, template: o.spec.template })),
  ...ofKind(objects, "CronJob").map((o) => ({ owner: o, template: o.spec.jobTemplate.spec.template }))
]

/** The environment a container gets: its env entries and the keys of the ConfigMaps and Secrets of its envFrom. */
const containerEnv = (objects: Array<K8sObject>, container: any): Map<string, { value?: string; from: string }> => {
  const env = new Map<string, { value?: string; from: string }>()
  for (const source of container.envFrom ?? []) {
    const prefix = source.prefix ?? ""
    if (source.configMapRef !== undefined) {
      const cm = one(objects, "ConfigMap", source.configMapRef.name)
      for (const [k, v] of Object.entries(cm.data ?? {})) {
        env.set(prefix + k, { value: String(v), from: `ConfigMap ${cm.metadata.name}` })
      }
    }
    if (source.secretRef !== undefined) {
      const secret = one(objects, "Secret", source.secretRef.name)
      for (const [k, v] of Object.entries(secret.stringData ?? {})) {
        env.set(prefix + k, { value: String(v), from: `Secret ${secret.metadata.name}` })
      }
      for (const [k, v] of Object.entries(secret.data ?? {})) {
        env.set(prefix + k, {
          value: Buffer.from(String(v), "base64").toString("utf8"),
          from: `Secret ${secret.metadata.name}`
        })
      }
    }
  }
  for (const e of container.env ?? []) env.set(e.name, { value: e.value, from: "env" })
  return env
}

const serverContainer = (deployment: K8sObject) => {
  const containers = deployment.spec.template.spec.containers
  expect(containers.length).toBe(1)
  return containers[0]
}

const portNumber = (container: any, port: string | number) =>
  typeof port === "number" ? port : container.ports?.find((p: any) => p.name === port)?.containerPort

/** The egress and ingress rules of every NetworkPolicy that selects these labels. */
const policiesFor = (objects: Array<K8sObject>, labels: Record<string, string>) =>
  ofKind(objects, "NetworkPolicy").filter((p) => selects(p.spec.podSelector, labels))

const allows = (rules: Array<any>, port: number, protocol = "TCP") =>
  rules.some((r) =>
    r.ports === undefined || r.ports.some((p: any) => p.port === port && (p.protocol ?? "TCP") === protocol)
  )

const isDnsRule = (rule: any) =>
  rule.ports?.length > 0 && rule.ports.every((p: any) => p.port === 53) &&
  rule.to?.length > 0 && rule.to.every((t: any) => t.podSelector?.matchLabels?.["k8s-app"] === "kube-dns")

/** The ports of every service URL in an environment (values like scheme://host[:port]/...). */
const urlPorts = (env: Map<string, { value?: string }>) => {
  const out = new Map<string, number>()
  for (const [name, { value }] of env) {
    if (value === undefined || !/^[a-z][a-z0-9+.-]*:\/\//.test(value)) continue
    const url = new URL(value)
    const scheme = url.protocol.replace(/:$/, "")
    const port = url.port !== "" ? Number(url.port) : defaultPortsByScheme[scheme]
    expect(port, `${name}: a port for ${scheme}`).toBeDefined()
    out.set(name, port!)
  }
  return out
}

const requireRendered = (overlay: string) => {
  if (kubectlMissing) return undefined
  return rendered.get(overlay)!
}

// ---- tests

describe("the server's contract, as read from its source", () => {
  it("is found: health routes, metrics path, default port, shutdown defaults, config keys", () => {
    expect([...healthRoutes].sort()).toEqual(["/health/live", "/health/ready", "/health/startup"])
    expect(metricsPath).toBe("/metrics")
    expect(defaultPort).toBe(8080)
    expect(shutdownDefaults).toEqual({
      SHUTDOWN_DRAIN_MS: 5000,
      SHUTDOWN_TIMEOUT_MS: 20000,
      SHUTDOWN_FINALIZER_TIMEOUT_MS: 3000
    })
    expect(scan.names.has("PORT")).toBe(true)
    expect(scan.names.has("BACKUP_ENABLED")).toBe(true)
    expect(scan.names.has("RESILIENCE_OLLAMA_TIMEOUT")).toBe(true)
  })

  it("leaves nothing unresolved that the server uses", () => {
    // Resilience.makeConfig nests under a computed prefix (the constant case of a dependency's name); the server
    // does not call it (apps/server/src/Breakers.ts nests under RESILIENCE_<NAME> itself, which is resolved).
    const known = ["packages/circuit-breaker/src/Resilience.ts: Config.nested(config, name.toUpperCase()"]
    const serverSource = readdirSync(join(repo, "apps/server/src")).map((f) => read(`apps/server/src/${f}`)).join("\n")
    expect(serverSource).not.toContain("Resilience.makeConfig")
    expect(scan.unresolved.filter((u) => !known.some((k) => u.startsWith(k)))).toEqual([])
  })

  it("the CLI (the backup CronJob's program) opens the SQL database, the vector store, the breakers and the tenant store only", () => {
    const cli = read("apps/server/src/cli.ts")
    for (const layer of ["Database.layerConfig", "Vectors.layer", "Breakers.layerBreakers", "TenantStoreSql.layer"]) {
      expect(cli).toContain(layer)
    }
    expect(cli).not.toMatch(/\bModels\b|\bTracing\b|OLLAMA|OTEL/)
  })

  it("prints how the source and the README's configuration tables differ (information for the README's owners)", () => {
    const readme = readmeNames(read("README.md"))
    const documented = (n: string) => readme.names.has(n) || [...readme.prefixes].some((p) => n.startsWith(p))
    const unread = [...readme.names].filter((n) => !scan.names.has(n)).sort()
    const undocumented = [...scan.names].filter((n) => !documented(n)).sort()
    console.log(`README names the server does not read: ${unread.join(", ") || "none"}`)
    console.log(`names the server reads that the README's tables do not list: ${undocumented.join(", ")}`)
    expect(unread).toEqual([])
  })
})

describe.each(overlays)("overlay %s", (overlay) => {
  it("renders, and every object validates against the Kubernetes schemas with no unknown field", async () => {
    const objects = requireRendered(overlay)
    if (objects === undefined) return
    expect(objects.length).toBeGreaterThan(0)
    const unmodelled: Array<string> = []
    for (const object of objects) {
      const where = `${object.kind}/${object.metadata?.name}`
      if (object.kind === "ServiceMonitor") {
        expect(serviceMonitorProblems(object), where).toEqual([])
        continue
      }
      const outcome = await validateModel(object).catch((error) => {
        throw new Error(`${where}: ${error.message}`)
      })
      if (outcome === "no model") unmodelled.push(where)
      else expect(unknownFields(repo, object), `${where}: fields no schema declares`).toEqual([])
    }
    expect(unmodelled, "every kind has a kubernetes-models class").toEqual([])
  })

  it("puts every namespaced object in the overlay's namespace, and every container on the overlay's image", () => {
    const objects = requireRendered(overlay)
    if (objects === undefined) return
    const namespace = one(objects, "Namespace").metadata.name
    expect(one(objects, "Namespace").metadata.labels?.["pod-security.kubernetes.io/enforce"]).toBe("restricted")
    for (const o of objects.filter((o) => o.kind !== "Namespace")) {
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(namespace)
    }
    const images = new Set(podOwners(objects).flatMap((p) => p.template.spec.containers.map((c: any) => c.image)))
    expect(images.size).toBe(1)
    expect([...images][0]).toMatch(/^[^:]+\/[^:]+:[^:]+$/) // a registry path and a tag, not the base's bare name
  })

  it("probes the server's health routes on the port it listens on", () => {
    const objects = requireRendered(overlay)
    if (objects === undefined) return
    const deployment = one(objects, "Deployment", "ouroboros")
    const container = serverContainer(deployment)
    const env = containerEnv(objects, container)
    const port = Number(env.get("PORT")?.value ?? defaultPort)
    expect(container.ports.map((p: any) => p.containerPort)).toEqual([port])
    const probes = {
      startupProbe: "/health/startup",
      readinessProbe: "/health/ready",
      livenessProbe: "/health/live"
    } as const
    for (const [field, path] of Object.entries(probes)) {
      const probe = container[field]
      expect(probe?.httpGet?.path, field).toBe(path)
      expect(healthRoutes.has(probe.httpGet.path), `${path} is a route of the server`).toBe(true)
      expect(portNumber(container, probe.httpGet.port), `${field} port`).toBe(port)
      expect(probe.timeoutSeconds ?? 1, `${field}: over the health checks' 2 s timeout`).toBeGreaterThan(2)
    }
    // Startup is generous: at least two minutes before the kubelet gives up on a starting server.
    const startup = container.startupProbe
    expect((startup.periodSeconds ?? 10) * (startup.failureThreshold ?? 3)).toBeGreaterThanOrEqual(120)
    // Liveness is patient: at least 20 s without an answer before a restart.
    const live = container.livenessProbe
    expect((live.periodSeconds ?? 10) * (live.failureThreshold ?? 3)).toBeGreaterThanOrEqual(20)
  })

  it("gives the server a termination grace period longer than its shutdown sequence", () => {
    const objects = requireRendered(overlay)
    if (objects === undefined) return
    const deployment = one(objects, "Deployment", "ouroboros")
    const container = serverContainer(deployment)
    const env = containerEnv(objects, container)
    const ms = (name: string) => Number(env.get(name)?.value ?? shutdownDefaults[name])
    const preStop = container.lifecycle?.preStop
    expect(preStop, "a preStop hook").toBeDefined()
    const preStopSeconds = preStop.sleep?.seconds ??
      (preStop.exec?.command?.[0] === "sleep" ? Number(preStop.exec.command[1]) : NaN)
    expect(Number.isFinite(preStopSeconds), "a preStop sleep of known length").toBe(true)
    const sequence = preStopSeconds + ms("SHUTDOWN_DRAIN_MS") / 1000 + idleGraceSeconds +
      ms("SHUTDOWN_TIMEOUT_MS") / 1000 +
      ms("SHUTDOWN_FINALIZER_TIMEOUT_MS") / 1000 + traceFlushSeconds
    const grace = deployment.spec.template.spec.terminationGracePeriodSeconds ?? 30
    console.log(`${overlay}: shutdown sequence ${sequence} s, grace period ${grace} s`)
    expect(grace).toBeGreaterThanOrEqual(sequence + marginSeconds)
  })

  it("sets only environment variables the server reads", () => {
    const objects = requireRendered(overlay)
    if (objects === undefined) return
    const readme = readmeNames(read("README.md"))
    for (const { owner, template } of podOwners(objects)) {
      expect(template.spec.enableServiceLinks, `${owner.kind}: no service-link variables`).toBe(false)
      for (const container of template.spec.containers) {
        const env = containerEnv(objects, container)
        const unknown = [...env.keys()].filter((n) => !scan.names.has(n))
        expect(unknown, `${owner.kind}/${owner.metadata.name}: variables the server does not read`).toEqual([])
        const notInReadme = [...env.keys()].filter((n) =>
          !readme.names.has(n) && ![...readme.prefixes].some((p) => n.startsWith(p))
        )
        if (notInReadme.length > 0) {
          console.log(
            `${overlay} ${owner.kind}: set, read by the server, not in the README's tables: ${notInReadme.join(", ")}`
          )
        }
      }
    }
  })

  it("lets the pods reach exactly DNS and the services the overlay configures, and lets in the server's port", () => {
    const objects = requireRendered(overlay)
    if (objects === undefined) return
    for (const { owner, template } of podOwners(objects)) {
      const policies = policiesFor(objects, template.metadata.labels)
      expect(policies.length, `${owner.kind}/${owner.metadata.name} is selected by a NetworkPolicy`).toBeGreaterThan(0)
      for (const p of policies) expect(p.spec.policyTypes).toEqual(expect.arrayContaining(["Ingress", "Egress"]))
      const egress = policies.flatMap((p) => p.spec.egress ?? [])
      const ingress = policies.flatMap((p) => p.spec.ingress ?? [])
      expect(allows(egress.filter(isDnsRule), 53, "UDP") && allows(egress.filter(isDnsRule), 53, "TCP"), "DNS").toBe(
        true
      )
      const needed = new Map<number, string>()
      for (const container of template.spec.containers) {
        for (const [name, port] of urlPorts(containerEnv(objects, container))) {
          if (owner.kind === "CronJob" && !cliServices.has(name)) continue
          needed.set(port, name)
        }
      }
      for (const [port, name] of needed) {
        expect(allows(egress, port), `${owner.kind}: egress to ${name}'s port ${port}`).toBe(true)
      }
      const opened = egress.filter((r) => !isDnsRule(r)).flatMap((r) => {
        expect(r.ports, "egress rules name their ports").toBeDefined()
        return r.ports.map((p: any) => p.port as number)
      })
      expect(opened.filter((p) => !needed.has(p)), `${owner.kind}: egress ports no configured service uses`).toEqual([])
      if (owner.kind === "Deployment") {
        const container = serverContainer(owner)
        expect(allows(ingress, container.ports[0].containerPort), "ingress on the server's port").toBe(true)
        expect(
          ingress.every((r) => r.ports?.every((p: any) => p.port === container.ports[0].containerPort)),
          "and only it"
        ).toBe(true)
      } else {
        expect(ingress, `${owner.kind}: no ingress`).toEqual([])
      }
    }
  })

  it("meets the restricted Pod Security Standard, as the image's user, with DATA_DIR and /tmp writable", () => {
    const objects = requireRendered(overlay)
    if (objects === undefined) return
    for (const { owner, template } of podOwners(objects)) {
      const pod = template.spec
      const where = `${owner.kind}/${owner.metadata.name}`
      expect(pod.securityContext?.runAsNonRoot, where).toBe(true)
      expect(pod.securityContext?.runAsUser, `${where}: the Dockerfile's USER`).toBe(imageUid)
      expect(pod.automountServiceAccountToken, where).toBe(false)
      expect(pod.hostNetwork ?? false).toBe(false)
      for (const c of pod.containers) {
        const sc = c.securityContext ?? {}
        expect(sc.allowPrivilegeEscalation, where).toBe(false)
        expect(sc.readOnlyRootFilesystem, where).toBe(true)
        expect(sc.privileged ?? false, where).toBe(false)
        expect(sc.capabilities?.drop, where).toEqual(["ALL"])
        expect(sc.capabilities?.add ?? [], where).toEqual([])
        expect(sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type, where).toBe("RuntimeDefault")
        expect(sc.runAsUser ?? imageUid, where).not.toBe(0)
        const env = containerEnv(objects, c)
        const mounts = (c.volumeMounts ?? []).map((m: any) => m.mountPath)
        expect(mounts, `${where}: DATA_DIR on a volume`).toContain(env.get("DATA_DIR")?.value)
        expect(mounts, `${where}: /tmp on a volume`).toContain("/tmp")
        const backupDir = env.get("BACKUP_DIR")?.value
        if (backupDir !== undefined) {
          const mount = c.volumeMounts.find((m: any) => m.mountPath === backupDir)
          const volume = pod.volumes.find((v: any) => v.name === mount?.name)
          expect(volume?.persistentVolumeClaim, `${where}: BACKUP_DIR on a persistent volume`).toBeDefined()
        }
        for (const [k, r] of Object.entries({ cpu: "requests", memory: "requests" })) {
          expect(c.resources?.[r]?.[k], `${where}: ${r}.${k}`).toBeDefined()
          expect(c.resources?.limits?.[k], `${where}: limits.${k}`).toBeDefined()
        }
      }
    }
  })

  it("wires Service, PodDisruptionBudget and (production) autoscaler and ServiceMonitor to the server's pods", () => {
    const objects = requireRendered(overlay)
    if (objects === undefined) return
    const deployment = one(objects, "Deployment", "ouroboros")
    const labels = deployment.spec.template.metadata.labels
    expect(selects(deployment.spec.selector, labels)).toBe(true)
    const container = serverContainer(deployment)
    const service = one(objects, "Service", "ouroboros")
    expect(Object.entries(service.spec.selector).every(([k, v]) => labels[k] === v)).toBe(true)
    for (const p of service.spec.ports) {
      expect(portNumber(container, p.targetPort)).toBe(container.ports[0].containerPort)
    }
    const pdb = one(objects, "PodDisruptionBudget")
    expect(selects(pdb.spec.selector, labels)).toBe(true)
    const hpas = ofKind(objects, "HorizontalPodAutoscaler")
    if (deployment.spec.replicas === undefined) {
      // Left to an autoscaler: one must exist, aimed at this Deployment, keeping two or more replicas.
      expect(hpas.length).toBe(1)
      expect(hpas[0]!.spec.scaleTargetRef).toMatchObject({
        apiVersion: "apps/v1",
        kind: "Deployment",
        name: "ouroboros"
      })
      expect(hpas[0]!.spec.minReplicas).toBeGreaterThanOrEqual(2)
      // The PostgreSQL pools of all replicas (and a backup job) fit PostgreSQL's default of 100 connections.
      const pool = Number(containerEnv(objects, container).get("DATABASE_MAX_CONNECTIONS")?.value ?? 10)
      expect(pool * (hpas[0]!.spec.maxReplicas + 1)).toBeLessThanOrEqual(100)
    } else {
      expect(hpas).toEqual([])
    }
    for (const monitor of ofKind(objects, "ServiceMonitor")) {
      expect(selects(monitor.spec.selector, service.metadata.labels ?? {}), "selects the Service").toBe(true)
      for (const e of monitor.spec.endpoints) {
        expect(service.spec.ports.map((p: any) => p.name)).toContain(e.port)
        expect(e.path).toBe(metricsPath)
      }
    }
  })
})

describe("what each overlay is for", () => {
  it("embedded: one replica on a PersistentVolumeClaim, never two pods on it, backups in the process", () => {
    const objects = requireRendered("embedded")
    if (objects === undefined) return
    const deployment = one(objects, "Deployment", "ouroboros")
    expect(deployment.spec.replicas).toBe(1)
    expect(deployment.spec.strategy?.type).toBe("Recreate")
    const env = containerEnv(objects, serverContainer(deployment))
    expect(env.has("DATABASE_URL") || env.has("QDRANT_URL")).toBe(false)
    const data = deployment.spec.template.spec.volumes.find((v: any) => v.name === "data")
    const claim = one(objects, "PersistentVolumeClaim", data.persistentVolumeClaim?.claimName)
    expect(claim.spec.accessModes.some((m: string) => m === "ReadWriteOnce" || m === "ReadWriteOncePod")).toBe(true)
    expect(env.get("BACKUP_ENABLED")?.value ?? "true").toBe("true")
    expect(ofKind(objects, "CronJob")).toEqual([])
  })

  it("production: replicas on PostgreSQL, Redis, Qdrant and Ollama, credentials in a Secret template", () => {
    const objects = requireRendered("production")
    if (objects === undefined) return
    const deployment = one(objects, "Deployment", "ouroboros")
    const container = serverContainer(deployment)
    const env = containerEnv(objects, container)
    for (const name of ["DATABASE_URL", "REDIS_URL", "QDRANT_URL", "OLLAMA_URL"]) expect(env.has(name), name).toBe(true)
    for (
      const name of ["DATABASE_URL", "REDIS_URL", "QDRANT_API_KEY", "OUROBOROS_ADMIN_API_KEY", "OUROBOROS_API_KEYS"]
    ) {
      expect(env.get(name)?.from, `${name} comes from the Secret`).toBe("Secret ouroboros-secrets")
    }
    // A template: the placeholders cannot start a server (the server wants keys of 16 characters or more).
    const secret = one(objects, "Secret", "ouroboros-secrets")
    expect(Object.values(secret.stringData).every((v) => String(v).includes("CHANGE_ME"))).toBe(true)
    expect(String(secret.stringData.OUROBOROS_ADMIN_API_KEY).length).toBeLessThan(16)
    expect(String(secret.stringData.OUROBOROS_API_KEYS).split(":")[1]!.length).toBeLessThan(16)
    expect(deployment.spec.strategy).toMatchObject({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0 } })
    expect(ofKind(objects, "ServiceMonitor").length).toBe(1)
    expect(env.get("BACKUP_ENABLED")?.value).toBe("true") // the in-process scheduler, one replica at a time
  })

  it("production-backup-cronjob: the CronJob takes the backups and the server's scheduler is off", () => {
    const objects = requireRendered("production-backup-cronjob")
    if (objects === undefined) return
    const deployment = one(objects, "Deployment", "ouroboros")
    const serverEnv = containerEnv(objects, serverContainer(deployment))
    expect(serverEnv.get("BACKUP_ENABLED")?.value).toBe("false")
    const cronjob = one(objects, "CronJob", "ouroboros-backup")
    expect(cronjob.spec.concurrencyPolicy).toBe("Forbid")
    const pod = cronjob.spec.jobTemplate.spec.template.spec
    expect(pod.restartPolicy).toBe("Never")
    const container = pod.containers[0]
    expect([...container.command, ...container.args].join(" ")).toMatch(
      /node apps\/server\/dist\/cli\.js backup create/
    )
    expect(container.image).toBe(serverContainer(deployment).image)
    // The same configuration as the server: same stores, same backup directory on the same claim.
    const jobEnv = containerEnv(objects, container)
    for (const name of ["DATABASE_URL", "QDRANT_URL", "BACKUP_DIR"]) {
      expect(jobEnv.get(name)?.value).toBe(serverEnv.get(name)?.value)
    }
    const claimOf = (spec: any, c: any) =>
      spec.volumes.find((v: any) =>
        v.name === c.volumeMounts.find((m: any) => m.mountPath === jobEnv.get("BACKUP_DIR")?.value)?.name
      )
        ?.persistentVolumeClaim?.claimName
    expect(claimOf(pod, container)).toBe(claimOf(deployment.spec.template.spec, serverContainer(deployment)))
  })
})
