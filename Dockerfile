# syntax=docker/dockerfile:1
#
# Image of the Python Prometheus Adapter, a drop-in for registry.k8s.io/prometheus-adapter.
#
#   docker build -t prometheus-adapter-py .
#
# Run it like the Go adapter's image: the entrypoint is the adapter, the arguments are its
# flags. The image is meant for a read-only root filesystem; mount
#   - an emptyDir at /tmp (HOME, TMPDIR and the self-signed serving certificate in
#     /tmp/cert; or give --tls-cert-file/--tls-private-key-file from a Secret), and
#   - the rules ConfigMap at /etc/adapter (config.yaml),
# and set securityContext runAsNonRoot, readOnlyRootFilesystem: true, drop ALL capabilities.
#
# Keep in lockstep with scripts/container-recipe.sh, which performs the same commands on a
# machine without a Docker engine; tests/integration/test_container_recipe.py runs that
# recipe, starts the adapter as the image would, and checks the two files have not drifted.

# One base for both stages, so that the wheels built in stage 1 fit the Python of stage 2.
ARG PYTHON_IMAGE=python:3.11-slim

# ---- Stage 1: build the project's wheel and the wheels of its runtime dependencies. -------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the wheel is built from (see .dockerignore): no tests, harness, scripts or docs.
COPY pyproject.toml README.md ./
COPY adapter/ adapter/
# The project's wheel plus a wheel of every runtime dependency (the [project] dependencies,
# not the [test] extra). Anything without a binary wheel is compiled here, in the build
# stage, so the final image needs no compiler.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# ---- Stage 2: the runtime image. ----------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="prometheus-adapter-py" \
      org.opencontainers.image.description="Python drop-in replacement for the Kubernetes Prometheus Adapter" \
      org.opencontainers.image.licenses="Apache-2.0"
# A virtualenv holding only the adapter and its runtime dependencies, installed from the
# stage-1 wheels alone (--no-index: nothing is fetched here). The wheels are bind-mounted,
# so they never become a layer of the image; --no-cache-dir leaves no pip cache behind.
# pip compiles the bytecode now, as root: at run time nothing has to (or could) be written.
# pip and setuptools are then removed from the venv: the adapter needs neither.
# /adapter is the Go image's entrypoint: manifests written for it (`command: [/adapter]`, or
# the Helm chart's `args: [/adapter, ...]`, whose first word our parser ignores as pflag
# does) run unchanged.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/adapter \
 && /opt/adapter/bin/pip install --no-cache-dir --no-index --find-links /wheels prometheus-adapter-py \
 && /opt/adapter/bin/pip uninstall -y pip setuptools \
 && ln -s opt/adapter/bin/prometheus-adapter /adapter
# No .pyc writes on a read-only root; logs unbuffered; the venv first on PATH; HOME on the
# /tmp emptyDir (uid 65532 has no passwd entry, so no home directory of its own).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/adapter/bin:$PATH HOME=/tmp
# Numeric non-root user and group (distroless "nonroot", as KEDA's adapter uses), so that
# runAsNonRoot can verify it without a passwd lookup. It owns nothing in the image.
USER 65532:65532
# The only writable place when the root filesystem is read-only: the emptyDir on /tmp.
WORKDIR /tmp
EXPOSE 6443
# The Go adapter's flags, unchanged (see `prometheus-adapter --help`).
ENTRYPOINT ["prometheus-adapter"]
# Defaults: serve on 6443 (Service port 443 -> 6443), self-signed cert on the emptyDir, rules
# from the ConfigMap. Giving any arguments replaces all of these, as with the Go image.
CMD ["--secure-port=6443", "--cert-dir=/tmp/cert", "--config=/etc/adapter/config.yaml"]
