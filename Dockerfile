# Multi-stage build of both servers. Used by docker-compose.yml; the same image runs
# either binary (the compose file picks the command).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY auth-server auth-server
COPY posts-server posts-server
COPY migrations migrations
COPY poem-edge poem-edge
COPY jwt-verifier jwt-verifier
COPY db-outage db-outage
COPY sqlite-readers sqlite-readers
RUN cargo build --release --locked --bin auth-server --bin posts-server

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app app \
    && mkdir -p /app /keys \
    && chown app /app /keys \
    && chmod 0700 /keys
COPY --from=build /src/target/release/auth-server /src/target/release/posts-server /usr/local/bin/
USER app
WORKDIR /app
EXPOSE 8000 8001
CMD ["auth-server"]
