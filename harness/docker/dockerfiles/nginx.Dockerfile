# nginx from Debian's package. The harness writes /etc/nginx/nginx.conf into the
# container (docker cp) and reloads it with SIGHUP when replicas come and go.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
# The local base (make docker-base) has the packages already; a pulled one gets them now.
RUN dpkg -s nginx >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends nginx >/dev/null && rm -rf /var/lib/apt/lists/*; }; rm -f /etc/nginx/sites-enabled/*
EXPOSE 80
STOPSIGNAL SIGTERM
ENTRYPOINT ["nginx", "-g", "daemon off;"]
