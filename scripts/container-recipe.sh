#!/usr/bin/env bash
# The Dockerfile's recipe, performed on this machine (no Docker engine needed).
#
#   scripts/container-recipe.sh DIR        (PYTHON=/usr/bin/python3.11 by default)
#
# Runs the same commands as the two stages of the Dockerfile, with DIR standing in for the
# image's root filesystem:
#   stage 1  DIR/src          the build context (pyproject.toml, README.md, adapter/)
#            DIR/build-venv   stands in for the build image's own pip
#            DIR/wheels       the project's wheel and its runtime dependencies' wheels
#   stage 2  DIR/opt/adapter  the runtime virtualenv, installed from DIR/wheels only
#            DIR/adapter      a link to its entrypoint, as the Go image's /adapter
# Then start DIR/opt/adapter/bin/prometheus-adapter as the image's ENTRYPOINT would
# (tests/integration/test_container_recipe.py does so as uid 65532 on read-only dirs).
#
# Keep in lockstep with the Dockerfile: the test checks that the commands below, with
# "$WHEELS" for /wheels and "$VENV" for /opt/adapter, are the Dockerfile's commands.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
# The venv links to this interpreter, so it must be one the image's user can reach: the
# system one, not a pyenv shim under root's home.
if [ -z "${PYTHON:-}" ]; then
  if [ -x /usr/bin/python3.11 ]; then PYTHON=/usr/bin/python3.11; else PYTHON=python3.11; fi
fi
SRC=$DIR/src
BUILD_VENV=$DIR/build-venv
WHEELS=$DIR/wheels
VENV=$DIR/opt/adapter

rm -rf "$SRC" "$BUILD_VENV" "$WHEELS" "$DIR/opt" "$DIR/adapter"
mkdir -p "$SRC" "$DIR/opt"

echo "== stage 1: build context (COPY pyproject.toml README.md adapter/)"
cp "$REPO/pyproject.toml" "$REPO/README.md" "$SRC/"
cp -R "$REPO/adapter" "$SRC/adapter"
# .dockerignore keeps bytecode out of the context.
find "$SRC" \( -name __pycache__ -o -name '*.py[cod]' \) -prune -exec rm -rf {} +

echo "== stage 1: pip wheel into $WHEELS"
"$PYTHON" -m venv "$BUILD_VENV"
# This machine's pip configuration (index, mirrors, certificates) applies here, as the
# build stage's network does in the image.
(cd "$SRC" && PIP_DISABLE_PIP_VERSION_CHECK=1 \
  "$BUILD_VENV"/bin/pip wheel --no-cache-dir --wheel-dir "$WHEELS" .)

echo "== stage 2: runtime virtualenv $VENV"
# The image's stage 2 has no pip configuration: drop this machine's (PIP_* variables and
# config files, e.g. extra find-links) so that DIR/wheels is the only source.
clean_pip_env() {
  local name
  for name in $(compgen -e); do
    case $name in PIP_*) unset "$name" ;; esac
  done
  export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
}
(
  clean_pip_env
  "$PYTHON" -m venv "$VENV" \
    && "$VENV"/bin/pip install --no-cache-dir --no-index --find-links "$WHEELS" prometheus-adapter-py \
    && "$VENV"/bin/pip uninstall -y pip setuptools \
    && ln -s opt/adapter/bin/prometheus-adapter "$DIR"/adapter
)
echo "== done: $VENV/bin/prometheus-adapter"
