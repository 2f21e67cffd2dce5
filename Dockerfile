# Custodian container image: build stage, then a small non-root runtime.
#   docker build -t custodian .
#   docker run -d -p 8080:8080 -v custodian-data:/var/lib/custodian/data custodian
#   docker exec <container> custodian token create --tenant acme --create-tenant --scope scim --name okta
# Data (SQLite database and tombstone.key) is in the volume /var/lib/custodian/data: back up both.
# PostgreSQL instead: -e CUSTODIAN_DATABASE_URL=postgres://… -e CUSTODIAN_TOMBSTONE_KEY=<hex>.
# `deploy/check` (a .ci/run step) lints this file with hadolint and checks its shape.

FROM rust:1.95.0-bookworm AS build
# diesel's PostgreSQL backend links libpq; SQLite is compiled in.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The toolchain the image brings (rust-toolchain.toml names the same release).
ENV RUSTUP_TOOLCHAIN=1.95.0
RUN cargo build --release --locked --package custodian --bin custodian \
    && install -m 0755 target/release/custodian /usr/local/bin/custodian

FROM debian:bookworm-slim AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 custodian \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/custodian --shell /usr/sbin/nologin custodian \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/custodian /var/lib/custodian/data
COPY --from=build /usr/local/bin/custodian /usr/local/bin/custodian
WORKDIR /var/lib/custodian
# JSON log lines for the container runtime's log collector; the journal
# (disposals, outside the database) beside the database in the volume.
ENV CUSTODIAN_DATABASE_URL=sqlite:///var/lib/custodian/data/custodian.db \
    CUSTODIAN_BIND=0.0.0.0:8080 \
    CUSTODIAN_LOG_FORMAT=json
VOLUME ["/var/lib/custodian/data"]
USER 10001:10001
EXPOSE 8080
# The binary probes its own /healthz (the image has no curl or wget).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["custodian", "healthcheck", "--timeout", "3"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["custodian"]
CMD ["serve"]
