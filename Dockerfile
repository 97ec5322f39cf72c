# Images for the training job queue. Targets (always name one with --target):
#   runtime     api and migrate: compiled JS and production dependencies, no TensorFlow library
#   worker-cpu  the worker with @tensorflow/tfjs-node (libtensorflow 2.9.1, CPU) when its
#               download works at build time, else the wasm backend (see TFJS_NODE below)
#   worker-gpu  the worker with @tensorflow/tfjs-node-gpu on CUDA 11.2 + cuDNN 8.1, the versions
#               libtensorflow 2.9.1 (tfjs-node-gpu 4.22) was built against
#
#   docker build --target runtime    -t googlenet-queue .
#   docker build --target worker-cpu -t googlenet-queue-worker-cpu .
#   docker build --target worker-gpu -t googlenet-queue-worker-gpu .
#
# Builds with any builder: BuildKit (Docker 23+, or DOCKER_BUILDKIT=1) and Docker 20.10's
# classic builder, which Debian's docker-compose 1.29 uses by default. So: no `# syntax=` line
# (BuildKit would fetch that frontend image from a registry), no heredocs, no `RUN --mount`.
# The classic builder runs every stage above the target, whether the target needs it or not:
# that is why the stages are in this order (runtime first, the GPU stages last), so building
# runtime or worker-cpu never touches the CUDA base image or the GPU download.
#
# The code runs compiled (`npm run build` -> dist/, the same layout as src/), not through tsx,
# so no devDependency reaches a runtime image. Dependencies come from package-lock.json (npm ci).
#
# Network at build time: the npm registry for every target; the worker targets also download
# libtensorflow and the tfjs native binding from storage.googleapis.com (tfjs-node's install
# script). Behind a proxy, pass --build-arg HTTPS_PROXY=...; a mirror of the libtensorflow
# archives: --build-arg TFJS_NODE_CDN_STORAGE=https://mirror.example/ (the install script
# fetches <that>tensorflow/libtensorflow/libtensorflow-<gpu|cpu>-linux-x86_64-2.9.1.tar.gz).
#
# For builds that repeat byte for byte, pin the base images by digest, e.g.
# --build-arg NODE_IMAGE=node:20-bookworm-slim@sha256:...

ARG NODE_IMAGE=node:20-bookworm-slim
# The CUDA userspace of worker-gpu. tfjs-node-gpu 4.22's libtensorflow 2.9.1 needs CUDA 11.x
# (libcudart.so.11.0, cuBLAS 11, cuFFT 10, ...) and cuDNN 8. NVIDIA marks this Ubuntu 20.04
# tag end-of-life; if your registry no longer has it, give another CUDA 11 + cuDNN 8 runtime
# image here (docs/deployment.md, "GPU image").
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
RUN npm ci --ignore-scripts
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
 && test -f dist/src/worker/gpu-check.js \
 && find src -type f ! -name '*.ts' -exec cp --parents {} dist/ \;

# Production dependencies, optional ones included, with no install script run. Of the
# production packages that have one, msgpackr-extract works without it (its prebuilt binary is
# a package of its own), core-js's only prints a banner, and the tfjs native packages' run
# below, each in the one image that uses it. keep-deps.mjs then deletes what an image does not
# use (see its header).
FROM node-base AS deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts
COPY deploy/docker/keep-deps.mjs /usr/local/lib/keep-deps.mjs

# api and migrate: no tfjs native package.
FROM deps AS deps-runtime
RUN node /usr/local/lib/keep-deps.mjs

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

# ---------------------------------------------------------------------------------------------
# The CPU worker's dependencies. TFJS_NODE says what to do with tfjs-node, whose install script
# downloads libtensorflow:
#   auto      (default) install it; if the download fails (no network, a blocked host), go on
#             without it: the worker then trains on the wasm backend and logs why at start
#   required  install it or fail the build
#   skip      do not try (air-gapped builds: no waiting on a download that cannot work)
# `npm rebuild <pkg>` runs that package's install script; unlike `npm ci` it fails when the
# script fails, which is what lets `required` stop the build.
FROM deps AS deps-cpu
ARG TFJS_NODE=auto
ARG TFJS_NODE_CDN_STORAGE
RUN case "$TFJS_NODE" in auto|required|skip) ;; \
      *) echo "TFJS_NODE must be auto, required or skip, not '$TFJS_NODE'" >&2; exit 1 ;; esac \
 && if [ "$TFJS_NODE" != skip ] \
       && npm rebuild @tensorflow/tfjs-node \
       && node -e "require('@tensorflow/tfjs-node')"; then \
      node /usr/local/lib/keep-deps.mjs @tensorflow/tfjs-node \
      && echo "tfjs-node: installed (libtensorflow CPU)"; \
    elif [ "$TFJS_NODE" = required ]; then \
      echo "TFJS_NODE=required: tfjs-node's libtensorflow could not be installed (above)" >&2; \
      exit 1; \
    else \
      node /usr/local/lib/keep-deps.mjs \
      && echo "tfjs-node: not installed (TFJS_NODE=$TFJS_NODE); the worker will train on wasm"; \
    fi

FROM os-base AS worker-cpu
COPY --from=deps-cpu /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY prisma ./prisma
USER node
ENV TRAIN_BACKEND=auto
CMD ["node", "dist/src/worker/main.js"]

# ---------------------------------------------------------------------------------------------
# The GPU binding cannot be loaded without CUDA here, so only check that its files exist. A
# failed download fails the build: a GPU image without its GPU library would be a trap.
FROM deps AS deps-gpu
ARG TFJS_NODE_CDN_STORAGE
RUN npm rebuild @tensorflow/tfjs-node-gpu \
 && node /usr/local/lib/keep-deps.mjs @tensorflow/tfjs-node-gpu \
 && ls node_modules/@tensorflow/tfjs-node-gpu/deps/lib/libtensorflow.so.2 \
       node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v*/tfjs_binding.node

# CUDA 11 + cuDNN 8 runtime with the node binary of NODE_IMAGE copied in (Node 20's official
# builds need glibc >= 2.28; Ubuntu 20.04 has 2.31) and Debian's static tini (its dynamic one
# needs glibc 2.34). Nothing is installed with apt in this stage.
FROM ${CUDA_IMAGE} AS worker-gpu
COPY --from=node-base /usr/local/bin/node /usr/local/bin/node
COPY --from=os-base /usr/bin/tini-static /usr/bin/tini
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/sh --create-home node \
 && mkdir -p /data /artifacts /cuda-cache \
 && chown node:node /data /artifacts /cuda-cache
WORKDIR /app
# CUDA_CACHE_PATH: where the driver keeps kernels it compiled from PTX (GPUs newer than the
# library's native kernels, e.g. Hopper: docs/deployment.md); compose mounts a volume there so
# that the long first compile happens once, not at every start.
ENV NODE_ENV=production \
    DATA_ROOT=/data \
    ARTIFACT_ROOT=/artifacts \
    TRAIN_BACKEND=tfjs-node-gpu \
    CUDA_CACHE_PATH=/cuda-cache \
    CUDA_CACHE_MAXSIZE=4294967296
COPY package.json ./
COPY --from=deps-gpu /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY prisma ./prisma
USER node
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/worker/main.js"]
