# syntax=docker/dockerfile:1
# mm7-gateway container image.
#
#   docker build -t mm7-gateway .
#   docker run --rm -e MM7GW_API_KEY=change-me -p 8080:8080 -p 8081:8081 -p 9100:9100 \
#       -v mm7gw-data:/var/lib/mm7-gateway mm7-gateway
#
# Two stages: the builder turns the source into wheels (ours and every dependency), the
# runtime installs only those wheels, offline, into a slim Python without build tools.
# The default config (config/docker/gateway.toml) listens on 0.0.0.0 and keeps its data
# under /var/lib/mm7-gateway; mount your own over /etc/mm7-gateway/gateway.toml.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# The wheel needs only these (see .dockerignore, which keeps everything else out).
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY gateway ./gateway
RUN pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mm7-gateway" \
      org.opencontainers.image.description="MM7 (3GPP TS 23.140) carrier gateway daemon" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Install from the builder's wheels through a bind mount: no wheel files left in a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index /wheels/*.whl
# A fixed numeric uid/gid, so orchestrators can check runAsNonRoot and volumes can be
# chowned ahead of time.
RUN groupadd --system --gid 10001 mm7 \
    && useradd --system --uid 10001 --gid mm7 --no-create-home \
       --home-dir /var/lib/mm7-gateway --shell /usr/sbin/nologin mm7 \
    && mkdir -p /etc/mm7-gateway /var/lib/mm7-gateway \
    && chown mm7:mm7 /var/lib/mm7-gateway
# Root-owned and read-only for the gateway: configuration is not the process's to change.
COPY config/docker/gateway.toml /etc/mm7-gateway/gateway.toml
USER 10001:10001
WORKDIR /var/lib/mm7-gateway
VOLUME ["/etc/mm7-gateway", "/var/lib/mm7-gateway"]
# REST API and media, MM7 callbacks from the MMSC, operations (/metrics, /healthz, /readyz).
EXPOSE 8080 8081 9100
# The image has no curl or wget: Python itself asks the ops listener whether we are alive.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=4).status != 200)"]
# SIGTERM starts a graceful drain (shutdown_grace_seconds); give `docker stop -t` more.
STOPSIGNAL SIGTERM
ENTRYPOINT ["mm7-gateway"]
CMD ["serve", "--config", "/etc/mm7-gateway/gateway.toml"]
