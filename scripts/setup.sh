# shellcheck shell=bash
# Sourced by lab.sh and test.sh: everything a fresh machine needs, done once and cached.
# Two environments, each with its own install stamp, so alternating lab.sh and test.sh never reinstalls:
#   .venv       the product as a user runs it (extras: local)            AIGIS_VENV overrides the path
#   .venv-test  the test suite and benchmark baselines (pytest, Playwright, JupySQL, ...)
#                                                                         AIGIS_TEST_VENV overrides the path
#   ensure_lab_env       ensure .venv and the JupyterLab settings a first run starts with
#   ensure_test_env      ensure .venv-test
#   ensure_venv DIR EXTRAS   create DIR and install the project with those extras; re-installs when
#                        pyproject.toml or this file change, starts clean when the extras change.
#                        Leaves VENV=DIR with DIR/bin first on PATH.
#   ensure_services      start PostgreSQL and MariaDB when installed but not running
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LAB_VENV="${AIGIS_VENV:-$ROOT/.venv}"
LAB_EXTRAS="local"
TEST_VENV="${AIGIS_TEST_VENV:-$ROOT/.venv-test}"
TEST_EXTRAS="dev,local,llama-server,bench,hub,embeddings"
VENV="$LAB_VENV"
TORCH_CPU="2.13.0"  # the `embeddings` extra's PyTorch, CPU build (see ensure_venv)

log() { printf '\033[1m[aigis]\033[0m %s\n' "$*" >&2; }

_labextension_sources() {  # the files the JupyterLab sidebar is built from, concatenated
  (cd "$ROOT" && find labextension \( -name node_modules -o -name lib -o -name build -o -name .yarn \) \
    -prune -o -type f ! -name tsconfig.tsbuildinfo -print0 2>/dev/null | LC_ALL=C sort -z \
    | xargs -0 -r cat) || true
}

#: How llama.cpp is compiled: for any x86-64 CPU with AVX2, not only this one. A native
#: build uses whatever the CPU reports, AMX included, and some virtual machines report AMX
#: without allowing it: the embedded model then dies of SIGILL at its first token.
LLAMA_CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON}"

_llama_wheel() {  # a directory holding the llama-cpp-python wheel built with those flags
  # pip's own cache keys a built wheel by its source, not by the flags: keep ours by flags
  local dir
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/aigis-wheels/$(printf '%s' "$LLAMA_CMAKE_ARGS" \
    | sha256sum | cut -c1-12)"
  if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    log "building llama-cpp-python for the embedded model (about 10 minutes, once per machine)"
    mkdir -p "$dir"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" python3 -m pip wheel -q --no-deps --no-cache-dir \
      -w "$dir" "llama-cpp-python>=0.3.2" >&2
  fi
  local wheel
  wheel="$(ls "$dir"/llama_cpp_python-*.whl | head -n1)"
  wheel="${wheel##*/llama_cpp_python-}"
  echo "llama-cpp-python==${wheel%%-*}" > "$dir/constraints.txt"  # never a newer sdist
  echo "$dir"
}

ensure_venv() {
  VENV="$1"
  local extras="$2"
  local stamp="$VENV/.aigis-installed" want have
  # The sidebar's sources count too: the install builds them into the environment.
  want="$({ cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh"; _labextension_sources; } \
    | sha256sum | cut -c1-16)-$extras"
  have="$(cat "$stamp" 2>/dev/null || true)"
  # A missing environment, an unfinished first install, or one made with other extras starts
  # clean: pip never removes what another extra brought (JupySQL's labextension in the lab, say).
  if [ ! -x "$VENV/bin/python" ] || [ "${have#*-}" != "$extras" ]; then
    log "creating virtual environment in $VENV (aigis-jupyter[$extras])"
    python3 -m venv --clear "$VENV"
    have=""
  fi
  if [ "$have" != "$want" ]; then
    log "installing aigis-jupyter[$extras] in $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip wheel
    if [[ ",$extras," == *,embeddings,* ]]; then
      # the CPU build first: a bare `torch` requirement would pick a much larger CUDA build
      "$VENV/bin/python" -m pip install -q "torch==$TORCH_CPU"
    fi
    local wheels
    wheels="$(_llama_wheel)"
    "$VENV/bin/python" -m pip install -q --find-links "$wheels" -c "$wheels/constraints.txt" \
      -e "$ROOT[$extras]"
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

ensure_lab_env() {
  ensure_venv "$LAB_VENV" "$LAB_EXTRAS"
  # JupyterLab reads overrides.json from its application settings dir in the environment
  # (not the user's): no "news" pop-up and no update check greet a first run.
  local dir="$VENV/share/jupyter/lab/settings" new
  new="$(cat <<'JSON'
{
  "@jupyterlab/apputils-extension:notification": {
    "fetchNews": "false",
    "checkForUpdates": false
  }
}
JSON
)"
  if [ "$(cat "$dir/overrides.json" 2>/dev/null || true)" != "$new" ]; then
    mkdir -p "$dir"
    printf '%s\n' "$new" > "$dir/overrides.json"
  fi
}

ensure_test_env() {
  ensure_venv "$TEST_VENV" "$TEST_EXTRAS"
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
