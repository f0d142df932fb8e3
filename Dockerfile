# syntax=docker/dockerfile:1
# modelreg operator image: `docker build -t modelreg:dev .`
#
# Stage 1 builds a wheel from the source tree; stage 2 installs only that wheel
# (and its dependencies) into a clean python:3.11-slim. The result runs as the
# non-root UID/GID 65532, needs no writable path (PYTHONDONTWRITEBYTECODE=1, so
# it works with readOnlyRootFilesystem) and starts `modelreg run`.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN python -m pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install /wheels/*.whl \
    && groupadd --system --gid 65532 modelreg \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin modelreg
USER 65532:65532
WORKDIR /
# 8080: liveness (/healthz), 8081: Prometheus metrics (/metrics)
EXPOSE 8080 8081
ENTRYPOINT ["modelreg", "run"]
