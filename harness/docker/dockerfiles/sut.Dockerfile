# The reference system under test (sut/), one replica per container.
# Built by `make docker-images`; BASE is debian:bookworm-slim where a registry answers,
# or the base `make docker-base` imports from debootstrap.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
# The local base (make docker-base) has the packages already; a pulled one gets them now.
RUN dpkg -s python3 python3-venv ca-certificates >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3 python3-venv ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*; }
COPY harness/docker/requirements/sut.txt /tmp/requirements.txt
COPY harness/docker/wheels/sut /wheels
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-cache-dir --no-index --find-links /wheels \
        -r /tmp/requirements.txt && rm -rf /wheels
COPY sut /app/sut
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 SUT_HOST=0.0.0.0 SUT_PORT=8000
USER nobody
EXPOSE 8000
ENTRYPOINT ["python", "-m", "sut"]
