#!/usr/bin/env bash
# Install what live-interpreter needs, idempotently: Debian packages (only those
# missing), a virtualenv at .venv, and the Python package with its pinned
# dependencies (re-installed only when pyproject.toml changes).
#   scripts/install.sh          what the server needs
#   scripts/install.sh --test   plus what the test suite needs (Chromium, iproute2, ...,
#                               and the pinned TypeScript compiler in tests/typescript)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

apt_packages=(python3 python3-venv python3-pip ca-certificates espeak-ng apertium apertium-eng-spa)
if (( want_test )); then
  apt_packages+=(chromium iproute2 fonts-dejavu-core postgresql redis-server coturn openssl prometheus
                nodejs)
fi

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
  echo "install: apt-get install ${missing[*]}"
  sudo_cmd=()
  (( EUID != 0 )) && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's nodejs comes without npm (a package of its own); NodeSource's brings it.
if (( want_test )) && ! command -v npm >/dev/null; then
  sudo_cmd=()
  (( EUID != 0 )) && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends npm
fi

# A Python >= 3.11 for the virtualenv: the first one found.
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python="$candidate"; break
  fi
done
[[ -n "$python" ]] || { echo "install: Python >= 3.11 is required" >&2; exit 1; }

[[ -x .venv/bin/python ]] || "$python" -m venv .venv

extras="."
(( want_test )) && extras=".[test]"
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-$want_test"
if [[ ! -f "$stamp" ]]; then
  echo "install: pip install -e '$extras'"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$extras"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The TypeScript compiler that checks the SDK's types, at the version package-lock.json pins.
if (( want_test )); then
  ts_stamp="tests/typescript/node_modules/.installed-$(sha256sum tests/typescript/package-lock.json | cut -c1-16)"
  if [[ ! -f "$ts_stamp" ]]; then
    echo "install: npm ci (tests/typescript)"
    (cd tests/typescript && npm ci --no-audit --no-fund --loglevel=error)
    touch "$ts_stamp"
  fi
fi
