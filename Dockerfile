# syntax=docker/dockerfile:1
#
# Images for the training job queue. Targets:
#   runtime     api and migrate (the default: last stage): compiled JS and production
#               dependencies, no TensorFlow native library
#   worker-cpu  the worker with @tensorflow/tfjs-node (libtensorflow 2.9.1, CPU)
#   worker-gpu  the worker with @tensorflow/tfjs-node-gpu on CUDA 11.2 + cuDNN 8.1, the versions
#               libtensorflow 2.9.1 (tfjs-node-gpu 4.22) was built against
#
#   docker build --target runtime    -t googlenet-queue .
#   docker build --target worker-cpu -t googlenet-queue-worker-cpu .
#   docker build --target worker-gpu -t googlenet-queue-worker-gpu .
#
# The code runs compiled (`npm run build` -> dist/, the same layout as src/), not through tsx,
# so no devDependency reaches a runtime image. Dependencies come from package-lock.json (npm ci).
#
# Network at build time: the npm registry for every target; the worker targets also download
# libtensorflow and the tfjs native binding from storage.googleapis.com (tfjs-node's install
# script). Behind a proxy, pass --build-arg HTTPS_PROXY=...; a mirror of those files can be
# given with --build-arg TFJS_NODE_CDN_STORAGE=https://mirror.example/ (read by that script).
#
# For builds that repeat byte for byte, pin the base images by digest, e.g.
# --build-arg NODE_IMAGE=node:20-bookworm-slim@sha256:...

ARG NODE_IMAGE=node:20-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS node-base
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

# Compile. Install scripts are skipped (the tfjs native packages would download libtensorflow
# for nothing); the project's own postinstall, `prisma generate`, is then run by itself: the
# Prisma CLI uses its bundled WASM for it (see prisma.config.ts), no native engine.
FROM node-base AS build
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts
COPY . .
# tsc writes only .js: every other file under src/ (dashboard assets and the like) is copied
# beside the compiled modules, so that dist/src mirrors src.
RUN npm run postinstall --if-present \
 && npm run build \
 && test -f dist/src/api/main.js \
 && test -f dist/src/worker/main.js \
 && test -f dist/src/db/migrate-cli.js \
 && test -f dist/src/api/auth/keys-create-cli.js \
 && test -f dist/src/client/cli.js \
 && find src -type f ! -name '*.ts' -exec cp --parents {} dist/ \;

# Production dependencies, optional ones included, with no install script run. Of the
# production packages that have one, msgpackr-extract works without it (its prebuilt binary is
# a package of its own), core-js's only prints a banner, and the tfjs native packages' run
# below, each in the one image that uses it.
FROM node-base AS deps
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts
# `--omit=optional` cannot keep one tfjs native package and drop the other, and `--omit=dev`
# alone keeps the Prisma CLI and TypeScript (dev dependencies that are also optional peers of
# @prisma/client: ~250 MB with their own dependencies). keep-deps.mjs deletes every package
# that package.json's dependencies, plus the packages named as arguments, do not reach.
# Checked against `npm ci --omit=dev --omit=optional`: with no argument it keeps the same
# packages, plus msgpackr-extract (the native add-on, with its two helpers) and pg-cloudflare.
COPY <<'EOF' /usr/local/lib/keep-deps.mjs
import fs from 'node:fs';
import path from 'node:path';

const read = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
const keep = new Set();

// The folder `name` resolves to from the package in `from`, walking up as require() does.
function resolve(from, name) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === '.') return undefined;
  }
}

// Keeps a package and what it needs: its dependencies, the optional ones that are installed
// (platform binaries), and its peers unless they are optional.
function visit(dir) {
  if (keep.has(dir)) return;
  keep.add(dir);
  const pkg = read(dir);
  const peers = Object.keys(pkg.peerDependencies ?? {});
  const names = [
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.optionalDependencies ?? {}),
    ...peers.filter((name) => !pkg.peerDependenciesMeta?.[name]?.optional),
  ];
  for (const name of names) {
    const found = resolve(dir, name);
    if (found) visit(found);
  }
}

for (const name of [...Object.keys(read('.').dependencies ?? {}), ...process.argv.slice(2)]) {
  const found = resolve('.', name);
  if (!found) throw new Error(`keep-deps: ${name} is not installed`);
  visit(found);
}

function sweep(modules) {
  for (const entry of fs.readdirSync(modules)) {
    if (entry.startsWith('.')) continue;
    const dir = path.join(modules, entry);
    if (entry.startsWith('@')) sweep(dir);
    else if (!keep.has(dir)) fs.rmSync(dir, { recursive: true, force: true });
    else if (fs.existsSync(path.join(dir, 'node_modules'))) sweep(path.join(dir, 'node_modules'));
  }
}
sweep('node_modules');
EOF

# api and migrate: no tfjs native package.
FROM deps AS deps-runtime
RUN node /usr/local/lib/keep-deps.mjs

# `npm rebuild <pkg>` runs that package's install script (the libtensorflow download) and,
# unlike `npm ci`, fails the build when an optional package's script fails: no silent fallback.
FROM deps AS deps-cpu
RUN node /usr/local/lib/keep-deps.mjs @tensorflow/tfjs-node \
 && npm rebuild @tensorflow/tfjs-node \
 && node -e "require('@tensorflow/tfjs-node')"

# The GPU binding cannot be loaded without CUDA here, so only check that its files exist.
FROM deps AS deps-gpu
RUN node /usr/local/lib/keep-deps.mjs @tensorflow/tfjs-node-gpu \
 && npm rebuild @tensorflow/tfjs-node-gpu \
 && ls node_modules/@tensorflow/tfjs-node-gpu/deps/lib/libtensorflow.so.2 \
       node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node

# ---------------------------------------------------------------------------------------------
# What the api, migrate and CPU worker images share. tini runs as PID 1: it passes SIGTERM on
# to node (which, as PID 1, would not get the default handlers) and reaps orphans.
FROM ${NODE_IMAGE} AS os-base
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data /artifacts \
 && chown node:node /data /artifacts
WORKDIR /app
# DATA_ROOT: data sets (mount them read-only). ARTIFACT_ROOT: checkpoints (mount a volume; a new
# named volume takes this folder's owner, the unprivileged `node` user, uid 1000).
ENV NODE_ENV=production \
    DATA_ROOT=/data \
    ARTIFACT_ROOT=/artifacts
# package.json carries "type": "module", which the compiled dist/**/*.js need.
COPY package.json ./
ENTRYPOINT ["/usr/bin/tini", "--"]

FROM os-base AS worker-cpu
COPY --from=deps-cpu /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY prisma ./prisma
USER node
ENV TRAIN_BACKEND=auto
CMD ["node", "dist/src/worker/main.js"]

# ---------------------------------------------------------------------------------------------
# CUDA 11.2 + cuDNN 8.1 runtime (Ubuntu 20.04) with the node binary of NODE_IMAGE copied in
# (Node 20's official builds need glibc >= 2.28; Ubuntu 20.04 has 2.31) and Debian's static
# tini (its dynamic one needs glibc 2.34). Nothing is installed with apt in this stage.
FROM ${CUDA_IMAGE} AS worker-gpu
COPY --from=node-base /usr/local/bin/node /usr/local/bin/node
COPY --from=os-base /usr/bin/tini-static /usr/bin/tini
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/sh --create-home node \
 && mkdir -p /data /artifacts \
 && chown node:node /data /artifacts
WORKDIR /app
ENV NODE_ENV=production \
    DATA_ROOT=/data \
    ARTIFACT_ROOT=/artifacts \
    TRAIN_BACKEND=tfjs-node-gpu
COPY package.json ./
COPY --from=deps-gpu /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY prisma ./prisma
USER node
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/worker/main.js"]

# ---------------------------------------------------------------------------------------------
# api (the default command) and migrate (`node dist/src/db/migrate-cli.js`, which finds
# /app/prisma/migrations by walking up from dist/src/db).
FROM os-base AS runtime
COPY --from=deps-runtime /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY prisma ./prisma
USER node
ENV PORT=8080
EXPOSE 8080
# Node has fetch built in, so no curl. 127.0.0.1 rather than localhost, which may mean ::1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/api/main.js"]
