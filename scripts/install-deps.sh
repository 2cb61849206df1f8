#!/usr/bin/env bash
# Installs everything the demo, the tests and the benchmark need, so that a fresh Debian 12
# machine needs no manual step: Debian packages listed in deps/apt-*.txt (only when root),
# then a venv in .venv with this repo (editable) and deps/pip-*.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

want_apt() { sed 's/#.*//' deps/apt-*.txt | xargs -n1 | sort -u; }

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for pkg in $(want_apt); do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "install-deps: apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q "${missing[@]}"
    fi
fi

# The venv uses Debian's interpreter: the same one the images run, and the one the
# benchmark compares against.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
if [ ! -x .venv/bin/python ] || [ ! -f .venv/.deps-installed ] || \
   [ -n "$(find setup.cfg deps -newer .venv/.deps-installed 2>/dev/null)" ]; then
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    reqs=()
    for f in deps/pip-*.txt; do reqs+=(-r "$f"); done
    .venv/bin/pip install -q --disable-pip-version-check -e . "${reqs[@]}"
    touch .venv/.deps-installed
fi
