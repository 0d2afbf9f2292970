# shellcheck shell=bash
# Sourced by lab.sh and test.sh: everything a fresh machine needs, done once and cached.
#   ensure_venv EXTRAS   create .venv and install the project with those extras (re-runs when pyproject changes)
#   ensure_services      start PostgreSQL and MariaDB when installed but not running
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AIGIS_VENV:-$ROOT/.venv}"
export PATH="$VENV/bin:$PATH"

log() { printf '\033[1m[aigis]\033[0m %s\n' "$*" >&2; }

ensure_venv() {
  local extras="$1"
  local stamp="$VENV/.aigis-installed" want
  want="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh" | sha256sum | cut -c1-16)-$extras"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment in $VENV"
    python3 -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    log "installing aigis-jupyter[$extras] (the first build of llama-cpp-python takes ~10 minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade pip wheel
    CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}" \
      "$VENV/bin/python" -m pip install -q -e "$ROOT[$extras]"
    echo "$want" > "$stamp"
  fi
}

_wait_for() {  # _wait_for SECONDS CMD... : poll until CMD succeeds
  local n="$1"; shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  return 1
}

ensure_services() {
  if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    _wait_for 30 pg_isready -h 127.0.0.1 -p 5432 -q || log "PostgreSQL did not come up"
  fi
  if [ -x /usr/sbin/mariadbd ] && ! mysqladmin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
    log "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    _wait_for 30 mysqladmin -h 127.0.0.1 -uroot ping || log "MariaDB did not come up"
  fi
}
