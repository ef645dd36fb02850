# Postgres from Debian's package (the version the embedded stack runs), with the same
# settings: commits synchronous (a crash must not lose acknowledged writes), fsync off.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
# The local base (make docker-base) has the packages already; a pulled one gets them now.
RUN dpkg -s postgresql-15 >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql-15 >/dev/null && rm -rf /var/lib/apt/lists/*; }
COPY harness/docker/dockerfiles/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:$PATH
RUN mkdir -p $PGDATA && chown -R postgres:postgres /var/lib/postgresql && chmod 0755 /usr/local/bin/postgres-entrypoint.sh
USER postgres
RUN /usr/local/bin/postgres-entrypoint.sh --init
VOLUME /var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
