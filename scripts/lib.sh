# Shared by scripts/test and scripts/demo: make sure Python 3.11+ with venv is there, and
# build a virtualenv with the project installed, saying what happens while it happens.

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
    with_progress "updating the package lists" /tmp/apt-update.log apt-get update -qq
  fi
  with_progress "installing $*" /tmp/apt-install.log \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

# with_progress WHAT LOG COMMAND...: run COMMAND with its output in LOG, saying
# "... WHAT (N s)" every 3 s while it runs; on failure, show the end of LOG.
with_progress() {
  local what=$1 log=$2 pid status started=$SECONDS next=3
  shift 2
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.2
    if (( SECONDS - started >= next )); then
      echo "   ... $what ($((SECONDS - started)) s)"
      next=$((next + 3))
    fi
  done
  wait "$pid" && status=0 || status=$?
  if [ "$status" != 0 ]; then
    echo "error: $what failed (exit code $status); the end of $log:" >&2
    tail -n 20 "$log" >&2
  fi
  return "$status"
}

# make_venv DIR REQUIREMENT [reuse]: a virtualenv in DIR with REQUIREMENT installed (editable).
# A fresh one, unless REUSE_VENV=1 or the third argument is "reuse": then an existing one is
# kept, and its packages are installed again only when pyproject.toml, REQUIREMENT or the
# Python version changed since the last install.
make_venv() {
  local dir=$1 requirement=$2 reuse=${3:-${REUSE_VENV:+reuse}}
  require_python
  local stamp
  stamp="$requirement $("$PYTHON" -c 'import sys; print(sys.version)' | head -n1) $(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ -n "$reuse" ] && [ -x "$dir/bin/python" ]; then
    if [ "$(cat "$dir/.installed" 2>/dev/null)" = "$stamp" ]; then
      echo "== reusing $dir (its packages are current)"
      return 0
    fi
    echo "== reusing $dir, updating its packages"
  else
    echo "== creating virtualenv $dir (a minute at most; later runs reuse it)"
    rm -rf "$dir"
    mkdir -p "$dir"
    with_progress "creating $dir" "$dir/create.log" "$PYTHON" -m venv "$dir"
  fi
  rm -f "$dir/.installed"
  echo "   installing the Python packages (pip's output: $dir/install.log)"
  with_progress "installing the Python packages into $dir" "$dir/install.log" \
    "$dir/bin/python" -m pip install --disable-pip-version-check -e "$requirement"
  echo "$stamp" >"$dir/.installed"
}
