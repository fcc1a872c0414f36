# syntax=docker/dockerfile:1
# One multi-stage image definition for every service:
#   docker build --build-arg PACKAGE=hangout-core -t hangout-core .
# The build stage compiles one release binary; the runtime stage is a slim Debian with that
# binary alone, run as an unprivileged user.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
ARG PACKAGE
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    test -n "${PACKAGE}" \
 && cargo build --release --locked -p "${PACKAGE}" \
 && cp "target/release/${PACKAGE}" /service

# GraphiQL's assets, from npm (served by the gateway; small enough to ship in every image).
FROM node:20-bookworm-slim AS graphiql
WORKDIR /graphiql
COPY gateway/graphiql/package.json gateway/graphiql/package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --create-home app
WORKDIR /app
COPY --from=build /service /usr/local/bin/service
COPY --from=graphiql /graphiql/node_modules /app/gateway/graphiql/node_modules
USER app:app
ENTRYPOINT ["/usr/local/bin/service"]
