#!/usr/bin/env bash
# Install what is needed, then run the server with the embedded defaults
# (local offline engines). Extra arguments go to `live-interpreter serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/live-interpreter serve "$@"
