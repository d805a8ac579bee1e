#!/usr/bin/env bash
# Install everything the tests need, then run ruff, mypy and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --test
source scripts/services.sh
.venv/bin/ruff check .
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if (( status == 5 )); then
  echo "test: pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit $status
