# Shared by scripts/test and scripts/demo: make sure Python 3.11+ with venv is there, and
# build a virtualenv with the project installed.

require_python() {
  PYTHON="${PYTHON:-python3}"
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: Python 3.11 or newer is needed as '$PYTHON' (set PYTHON=...)" >&2
    exit 1
  fi
  # Debian ships venv's pip bootstrap separately.
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    install_debian_packages python3-venv
  fi
}

install_debian_packages() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: please install the Debian packages: $*" >&2
    exit 1
  fi
  echo "== installing Debian packages: $*"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ]; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

# make_venv DIR REQUIREMENT: a fresh virtualenv in DIR with REQUIREMENT installed
# (kept as it is when REUSE_VENV=1 and it exists).
make_venv() {
  local dir=$1 requirement=$2
  require_python
  if [ -n "${REUSE_VENV:-}" ] && [ -x "$dir/bin/python" ]; then
    echo "== reusing $dir"
  else
    echo "== creating virtualenv $dir"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
  fi
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -e "$requirement"
}
