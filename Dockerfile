# syntax=docker/dockerfile:1
# consent-broker image: build with every dependency, run with production dependencies only, as an
# unprivileged user. `docker build -t consent-broker .`; see docs/deployment.md.

# Node.js 22.13 or a later 22.x, or 24 or later (package.json engines: ^22.13.0 || >=24).
# This image: Node 22.
ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: compile TypeScript (src/, emulator/) to dist/
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# .dockerignore admits only sources, manifests and the demo apps file.
COPY . .
RUN npm run build

# --- runtime: production dependencies and the compiled code, nothing else
FROM ${NODE_IMAGE} AS runtime
ENV HOST=0.0.0.0 \
    PORT=3000 \
    APPS_FILE=/app/config/apps.json
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install script of a dependency runs in the image.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The package bin (npx consent-broker-admin …) and npm start's launcher; both run the built dist/.
COPY bin ./bin
# The apps file is the operator's: mount theirs at /app/config/apps.json (APPS_FILE). The demo
# apps file (and dist/emulator) serve the compose demo profile only; production never selects them.
COPY config/apps.demo.json ./config/apps.demo.json
# The image's own `node` user (uid 1000): nothing under /app is writable by it.
USER node
EXPOSE 3000
# Liveness only (/healthz never touches Redis); slim images have no curl, so node fetches.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node as PID 1 receives SIGTERM directly; the broker drains in-flight requests and exits 0.
CMD ["node", "dist/src/main.js"]
