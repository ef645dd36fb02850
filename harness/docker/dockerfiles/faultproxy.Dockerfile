# gauntlet's fault proxy (chaos/proxy): speaks Toxiproxy's HTTP API on 8474, so it can
# stand in for the Toxiproxy image. Inside its container it listens on every address of
# the container (--allow-remote); only 127.0.0.1 of the host is published.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
# The local base (make docker-base) has the packages already; a pulled one gets them now.
RUN dpkg -s python3 python3-venv ca-certificates >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*; }
COPY harness/docker/requirements/faultproxy.txt /tmp/requirements.txt
COPY harness/docker/wheels/faultproxy /wheels
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-cache-dir --no-index --find-links /wheels \
        -r /tmp/requirements.txt && rm -rf /wheels
COPY chaos/__init__.py /app/chaos/__init__.py
COPY chaos/proxy /app/chaos/proxy
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER nobody
EXPOSE 8474
# Toxiproxy's flags work too (-host=0.0.0.0 -config=FILE), as a compose file gives them.
ENTRYPOINT ["python", "-m", "chaos.proxy", "--allow-remote"]
CMD ["-host=0.0.0.0", "-port=8474"]
