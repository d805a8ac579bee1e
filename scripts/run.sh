#!/usr/bin/env bash
# Install what is needed, then run the server with the embedded defaults (local
# offline engines, SQLite, in-memory cache) on this machine only, without room tokens
# (`serve --dev`). Extra arguments go to `live-interpreter serve`; for a deployment
# run `live-interpreter serve` itself (see the README's Security section).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/live-interpreter serve --dev "$@"
