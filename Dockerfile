# Gatehouse container image.
#
#   docker build -t gatehouse:local .
#   docker run --init -p 8443:8443 \
#     -v "$PWD/deploy/gateway.prod.yml:/etc/gatehouse/gateway.yml:ro" \
#     -v "$PWD/certs:/etc/gatehouse/tls:ro" \
#     -v gatehouse-keys:/var/lib/gatehouse/keys \
#     -e POSTGRES_USER=… -e POSTGRES_PASSWORD=… … gatehouse:local
#
# Nothing secret is in the image: the configuration (/etc/gatehouse/gateway.yml), the TLS
# certificate and key (/etc/gatehouse/tls) are mounted, and the identity signing keys are
# created on first start in a volume (/var/lib/gatehouse/keys). compose.prod.yml shows a
# complete deployment. The entrypoint is the `gatehouse` command, so
# `docker run … gatehouse:local check-config` and `… migrate` work as well as `serve`.

# Node 24, the current LTS line (Node 20 reached end of life on 2026-04-30). package.json's
# engines still allows >=20.12, which CI also runs; .ci/run runs a subset of the tests on 24.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- toolchain: what compiling argon2 from source needs ------------------------------
FROM ${NODE_IMAGE} AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# argon2 is compiled from source at install: its bundled linux-x64 prebuild is not trusted
# (it crashed on some machines). The official image has the Node headers under /usr/local,
# so node-gyp needs no download.
ENV npm_config_build_from_source=true \
    npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
WORKDIR /app
COPY package.json package-lock.json ./

# ---- build: every dependency (no install scripts: tsc needs no argon2 binary), then tsc --
FROM toolchain AS build
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY examples ./examples
RUN npm run build

# ---- prod-deps: production dependencies only, argon2 compiled for this image ----------
FROM toolchain AS prod-deps
RUN npm ci --omit=dev \
 && npm cache clean --force \
 && node -e "require('argon2')" \
 && test -f node_modules/argon2/build/Release/argon2.node

# ---- runtime ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# MALLOC_MMAP_THRESHOLD_: glibc serves allocations above 1 MiB with their own mappings, given
# back when freed. Without it, argon2's working memory (19 MiB per password hash) stays
# resident in the malloc arena of each thread that hashed, 26 MiB more per process at rest
# (bench/results).
ENV NODE_ENV=production \
    GATEHOUSE_CONFIG=/etc/gatehouse/gateway.yml \
    MALLOC_MMAP_THRESHOLD_=1048576
WORKDIR /app
# Owned by root and not writable by the user the gateway runs as.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The whoami demo upstream (compose.prod.yml runs it from this image); it imports dist/src/verify.js.
COPY --from=build /app/dist/examples/whoami ./dist/examples/whoami
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
# The config and TLS directory are mount points; the key directory is written by the
# gateway (identity keys are created on first start and rotated there), so it belongs to
# the unprivileged `node` user (uid 1000) that the official image provides. A named volume
# mounted there starts with this ownership; a host directory must be writable by uid 1000.
RUN chmod 0755 dist/src/bin.js \
 && ln -s /app/dist/src/bin.js /usr/local/bin/gatehouse \
 && mkdir -p /etc/gatehouse/tls /var/lib/gatehouse/keys \
 && chown node:node /var/lib/gatehouse/keys \
 && chmod 0700 /var/lib/gatehouse/keys
USER node
# 8443: the TLS listener. 9464: /metrics, for a scraper on the internal network only.
EXPOSE 8443 9464
STOPSIGNAL SIGTERM
# Liveness on the TLS port, certificate not verified (loopback). With another server.port,
# set HEALTHCHECK_URL (e.g. https://127.0.0.1:9443/health/live).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "/app/deploy/healthcheck.mjs"]
ENTRYPOINT ["node", "/app/dist/src/bin.js"]
CMD ["serve"]
