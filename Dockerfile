# syntax=docker/dockerfile:1
# The gateway's image, for linux/amd64 and linux/arm64 alike:
#   docker buildx build --platform linux/amd64,linux/arm64 -t edge-gateway .
# What it builds (JavaScript and WebAssembly) does not depend on the CPU, so the build stage runs
# on the builder's own platform, without emulation; the production dependencies are installed for
# the target platform. The image runs as the unprivileged `node` user with production packages
# only, and reports its health from the admin listener's /readyz.

FROM --platform=$BUILDPLATFORM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund
COPY gateway ./gateway
COPY filters ./filters
RUN npm run build

FROM node:20-bookworm-slim AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=production-dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/filters/dist ./filters/dist
COPY package.json ./
COPY config ./config
# The module and function caches (modules.cacheDir, relative to /app) are the only writes.
RUN mkdir -p .edge-gateway && chown node:node .edge-gateway
USER node
EXPOSE 8080 9901
# Healthy once /readyz answers 200: started, not draining (EDGE_GATEWAY_ADMIN overrides the address).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch((process.env.EDGE_GATEWAY_ADMIN || 'http://127.0.0.1:9901') + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/gateway/cli.js"]
CMD ["start", "--config", "config/fleet.yaml"]
