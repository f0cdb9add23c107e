# syntax=docker/dockerfile:1
#
# The Ouroboros server image:  docker build -t ouroboros .   docker run -p 8080:8080 -v ouroboros-data:/data ouroboros
#
# Three stages: `build` installs from the lock file and bundles the server (esbuild: apps/server/dist), `deps`
# installs the few packages the bundle leaves external (PGlite and its socket server, found by reading the bundle:
# deploy/runtime-deps.mjs), `runtime` holds only those, the bundle and the embedded database template, and runs
# as a non-root user. deploy/test/image.test.ts parses this file and follows its steps without Docker.

# The Node of the root package.json's `node` dependency (what npm scripts run on); the test keeps them equal.
ARG NODE_VERSION=22.23.3

FROM node:${NODE_VERSION}-trixie-slim AS build
WORKDIR /src
# Where the build leaves the template of a fresh embedded database (a new DATA_DIR then starts in ~1.5 s instead of
# running initdb for 5 to 13 s); the runtime stage copies it.
ENV OUROBOROS_PGLITE_TEMPLATE=/opt/ouroboros/pglite-template.tgz
COPY . .
# From the lock file. --ignore-scripts: the root `prepare` script would bundle the server before the step below
# does it on purpose, and the `node` package's postinstall would download a second Node 22 for npm scripts, which
# this image never runs (esbuild works without its postinstall: its binary comes from its platform package).
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
RUN ["mkdir", "-p", "/opt/ouroboros"]
RUN ["node", "apps/server/build.mjs"]
RUN ["node", "apps/console/build.mjs"]
RUN ["node", "deploy/runtime-deps.mjs", "apps/server/dist", "/opt/runtime-deps"]

FROM node:${NODE_VERSION}-trixie-slim AS deps
WORKDIR /deps
COPY --from=build /opt/runtime-deps/package.json /opt/runtime-deps/package-lock.json ./
# Production only, pinned and hash-checked by the subset of the repository's lock file written in the build stage.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:${NODE_VERSION}-trixie-slim AS runtime
# A user of its own with a numeric id (Kubernetes' runAsNonRoot can only verify a numeric USER), and the data
# directory it owns. Everything else in the image belongs to root and is read-only to the server.
RUN groupadd --system --gid 10001 ouroboros \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ouroboros \
 && mkdir -p /data \
 && chown 10001:10001 /data
WORKDIR /app
COPY --from=deps /deps/node_modules ./node_modules
COPY --from=build /src/apps/server/dist ./apps/server/dist
COPY --from=build /src/apps/console/dist ./apps/console/dist
COPY --from=build /opt/ouroboros/pglite-template.tgz ./pglite-template.tgz
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0 \
    DATA_DIR=/data \
    OUROBOROS_PGLITE_TEMPLATE=/app/pglite-template.tgz
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
# For `docker run` and Compose. Kubernetes ignores HEALTHCHECK (the kubelet runs the Deployment's probes instead),
# so it cannot fight them. It asks /health/live, not /health/ready: an unhealthy container may be restarted (Swarm
# does), and a dependency outage or a drain must not restart the server. Exec form, no shell; one short node
# process every 30 s.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health/live', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself (no shell, no npm in between), so the graceful shutdown of
# packages/shutdown runs: readiness 503, drain, in-flight requests, finalizers, exit 0.
CMD ["node", "apps/server/dist/main.js"]
