# personalize-consumer image: small (python:3.11-slim), runs as uid 10001, and needs nothing
# writable but /tmp, so it runs with a read-only root filesystem (Kubernetes
# readOnlyRootFilesystem, `docker run --read-only --tmpfs /tmp`).
#
#   docker build -t personalize-consumer .
#   docker run --rm --read-only --tmpfs /tmp -e KAFKA_BOOTSTRAP_SERVERS=... personalize-consumer
#
# The same image runs `personalize-consumer emulator` (the local PutEvents endpoint) and
# `python -m consumer.testing.samples` (the sample producer), as docker-compose.yml does. No HEALTHCHECK
# here for that reason: the consumer's is GET /healthz on METRICS_PORT (9400), declared by
# docker-compose.yml and the Helm chart's probes.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtualenv with the package and its dependencies (all from wheels) ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY consumer ./consumer
COPY schemas ./schemas
# The wheel carries the default schema and mapping (as consumer/schemas). Compile the bytecode
# now: the runtime filesystem is read-only, so nothing could be cached there later.
RUN pip install . \
    && python -m compileall -q -j 0 /opt/venv/lib

# ---- runtime: the virtualenv; the shipped schemas and examples also at /app/schemas ----
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY schemas /app/schemas
# Fail the build, not the first start, if the default schema cannot be found.
# (python -P: the installed package, not a ./consumer of the working directory.)
RUN python -P -c "from consumer import DEFAULT_SCHEMA_FILE as f; assert f.is_file(), f" \
    && personalize-consumer --help >/dev/null
WORKDIR /app
USER 10001:10001
# METRICS_PORT: /metrics, /healthz, /readyz
EXPOSE 9400
ENTRYPOINT ["personalize-consumer"]
CMD ["run"]
