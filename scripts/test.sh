#!/usr/bin/env bash
# Run the whole test suite: unit, live-database, embedded-model, notebook (nbval) and browser tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k guard`.
# The suite runs in .venv-test; the browser test starts scripts/lab.sh in the product's own .venv.
source "$(dirname "$0")/setup.sh"
(ensure_lab_env)
ensure_test_env
ensure_services
cd "$ROOT"
exec "$VENV/bin/python" -m pytest tests notebooks --nbval-lax -p no:cacheprovider "$@"
