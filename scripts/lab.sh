#!/usr/bin/env bash
# Start JupyterLab with the extension, the demo database, the embedded local model and the demo notebook.
source "$(dirname "$0")/setup.sh"
ensure_venv "local"
cd "$ROOT"
"$VENV/bin/aigis" demo
args=(--ServerApp.ip=127.0.0.1 --ServerApp.open_browser=False)
[ "$(id -u)" = 0 ] && args+=(--allow-root)
exec "$VENV/bin/jupyter" lab "${args[@]}" "$@" notebooks/quickstart.ipynb
