#!/usr/bin/env bash
# Start JupyterLab with the extension, the demo database, the embedded local model and the
# quickstart notebook open in front (the URL printed below lands on it).
# Runs in the product's own environment (.venv, extras `local`); binds 127.0.0.1.
# AIGIS_LAB_PORT picks the port (default: 8888 or the next free one); extra arguments go to
# `jupyter lab`, e.g. `bash scripts/lab.sh --port=9999`.
source "$(dirname "$0")/setup.sh"
ensure_lab_env
cd "$ROOT"
"$VENV/bin/aigis" demo
args=(
  --ServerApp.ip=127.0.0.1
  --ServerApp.open_browser=False
  --ServerApp.root_dir="$ROOT/notebooks"
  --LabApp.default_url=/lab/tree/quickstart.ipynb
)
if [ -n "${AIGIS_LAB_PORT:-}" ]; then
  args+=(--ServerApp.port="$AIGIS_LAB_PORT" --ServerApp.port_retries=0)
fi
[ "$(id -u)" = 0 ] && args+=(--allow-root)
exec "$VENV/bin/jupyter" lab "${args[@]}" "$@"
