# Redis from Debian's package, configured as the embedded stack runs it (append-only file,
# no snapshots), listening on the container's networks.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
# The local base (make docker-base) has the packages already; a pulled one gets them now.
RUN dpkg -s redis-server >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        redis-server >/dev/null && rm -rf /var/lib/apt/lists/*; } && mkdir -p /data && chown redis:redis /data
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["redis-server", "--bind", "0.0.0.0", "--port", "6379", "--dir", "/data", "--save", "", \
            "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no", \
            "--maxclients", "10000", "--loglevel", "warning"]
