#!/bin/sh
# A cluster with user and database `gauntlet`, trusted on the container's networks only
# (the host reaches it through a port published on 127.0.0.1). The image is built with
# the cluster in it (`--init`), which Docker copies into a new volume: a container starts
# in about a second instead of running initdb each time.
set -e
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb -D "$PGDATA" -U gauntlet -A trust -E UTF8 --locale=C --no-sync --no-instructions >/dev/null
    echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
    postgres -D "$PGDATA" -c listen_addresses='' -k /tmp >/dev/null 2>&1 &
    until pg_isready -q -h /tmp; do sleep 0.1; done
    psql -h /tmp -U gauntlet -d postgres -X -q -c "CREATE DATABASE gauntlet"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
[ "$1" = "--init" ] && exit 0
exec postgres -D "$PGDATA" -k /tmp -c listen_addresses='*' -c max_connections=300 \
    -c fsync=off -c synchronous_commit=on -c full_page_writes=off -c shared_buffers=128MB \
    -c log_min_messages=warning "$@"
