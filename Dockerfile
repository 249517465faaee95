# syntax=docker/dockerfile:1
#
# sinch-webhooks: a durable, verified receiver for Sinch webhooks.
#
# Build:
#   docker build -t sinch-webhooks .
#
# Run (SINCH_WEBHOOK_SECRET is required and is deliberately NOT baked into the image):
#   docker run -e SINCH_WEBHOOK_SECRET=... -p 3000:3000 -v sinch-data:/app/data sinch-webhooks
#
# Other settings (SINCH_WEBHOOK_SECRET_PREVIOUS, SIGNATURE_TOLERANCE_SECS, MAX_BODY_BYTES,
# RUST_LOG, ...) are read from the environment too; see .env.example.

# ---------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------
# rust:1-* tracks the latest stable 1.x; the crate needs >= 1.89 (edition 2024, File::try_lock).
# The slim image already ships gcc and libc6-dev, which is all the C we need: sqlx's
# bundled SQLite (libsqlite3-sys) and ring (rustls) are compiled with the cc crate.
# No pkg-config/libssl-dev: TLS is rustls, there is no OpenSSL anywhere in the tree.
FROM rust:1-slim-bookworm AS builder

WORKDIR /build

# 1. Dependencies only, so they are cached in their own layer and rebuilt only when
#    Cargo.toml or Cargo.lock change. The crate has both a library and a binary, so
#    stub both targets.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# 2. The real sources. migrations/ and ui/ must be present before this build because
#    `sqlx::migrate!("./migrations/sqlite")` embeds the SQL files and the inspector page's
#    files are compiled in with `include_str!`; build.rs rebuilds when migrations change.
#    (tests/ is not needed for a release build.)
COPY build.rs ./
COPY migrations ./migrations
COPY ui ./ui
COPY src ./src
# COPY keeps the files' original modification times, which can be older than the stub
# build above; cargo decides freshness by mtime, so without this touch it could keep the
# stub and ship an empty `fn main() {}`.
RUN touch src/lib.rs src/main.rs \
    && cargo build --release --locked

# ---------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------
# Same Debian release as the builder, so the glibc the binary was linked against matches.
FROM debian:bookworm-slim

# ca-certificates only: the binary uses rustls with bundled webpki roots, so this is just
# a safety net for anything that looks at the system trust store. No OpenSSL needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged user with a fixed uid/gid, so volume ownership is predictable.
RUN groupadd --system --gid 10001 sinch \
    && useradd --system --uid 10001 --gid sinch --no-create-home \
        --home-dir /app --shell /usr/sbin/nologin sinch

WORKDIR /app

# The journal lives in /app/data. It is created and chowned *before* VOLUME so that a new
# named volume is initialised with this ownership and the service can write to it.
# With a bind mount (-v /host/dir:/app/data) the host folder must be writable by uid 10001.
# SQLite's -wal and -shm files sit next to the database, so the whole folder must be
# writable, not just the .db file.
RUN mkdir -p /app/data && chown sinch:sinch /app/data
VOLUME /app/data

# Owned by root and not writable by the service user.
COPY --from=builder /build/target/release/sinch-webhooks /usr/local/bin/sinch-webhooks

# sqlx strips the "sqlite://" prefix and uses the rest as the path, so
# sqlite:///app/data/... is the absolute path /app/data/sinch-webhooks.db
# (the crate's default, sqlite://data/..., is relative to the working directory).
# LOG_FORMAT=json because there is no terminal in a container; filter with RUST_LOG.
ENV HOST=0.0.0.0 \
    PORT=3000 \
    LOG_FORMAT=json \
    DATABASE_URL=sqlite:///app/data/sinch-webhooks.db

EXPOSE 3000

USER sinch

# No HEALTHCHECK: the slim image has no curl/wget, and adding one just for this would grow
# the image. Orchestrators should probe the service over HTTP instead:
#   GET /healthz  liveness  (the process is up and serving HTTP)
#   GET /readyz   readiness (the database answers; 503 otherwise)
#
# Exec form, so the binary is PID 1 and receives SIGTERM from `docker stop` directly; it
# handles SIGTERM/SIGINT by shutting down gracefully.
ENTRYPOINT ["/usr/local/bin/sinch-webhooks"]
# Other subcommands: `migrate`, `sign`, `send` (e.g. `docker run ... sinch-webhooks migrate`).
CMD ["serve"]
