#!/usr/bin/env bash
# Run the whole test suite: unit, live-database, embedded-model and notebook (nbval) tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k guard`.
source "$(dirname "$0")/setup.sh"
ensure_venv "dev,local,llama-server,bench"
ensure_services
cd "$ROOT"
exec "$VENV/bin/python" -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
