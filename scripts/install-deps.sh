#!/usr/bin/env bash
# Installs what a profile needs, so that a fresh Debian 12 machine needs no manual step:
#   scripts/install-deps.sh demo   what `make demo` needs: deps/apt-demo.txt, and .venv with this
#                                  repo (its runtime dependencies from setup.cfg)
#   scripts/install-deps.sh [all]  what `make test` and `make bench` need: every deps/apt-*.txt,
#                                  and .venv with this repo and every deps/pip-*.txt
# Debian packages are installed only when run as root. Another apt process holding the lock (common
# right after boot) is waited for, up to APT_LOCK_TIMEOUT seconds (default 900).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${1:-all}
case "$profile" in
    demo) apt_files=(deps/apt-demo.txt); pip_files=() ;;
    all) apt_files=(deps/apt-*.txt); pip_files=(deps/pip-*.txt) ;;
    *) echo "install-deps: unknown profile '$profile'; use demo or all" >&2; exit 64 ;;
esac
lock_timeout=${APT_LOCK_TIMEOUT:-900}
lock_poll=${APT_LOCK_POLL:-5}  # seconds between tries while the package lists are locked

want_apt() { sed 's/#.*//' "${apt_files[@]}" | xargs -n1 | sort -u; }

# `apt-get update` does not honour DPkg::Lock::Timeout (that covers the dpkg lock only), so a
# locked package list is retried until the timeout.
apt_update() {
    local waited=0 out
    until out=$(LC_ALL=C apt-get update -q 2>&1); do
        if grep -q "Could not get lock" <<<"$out" && [ "$waited" -lt "$lock_timeout" ]; then
            [ "$waited" -eq 0 ] && echo "install-deps: another apt process holds the package lists; waiting up to ${lock_timeout}s"
            sleep "$lock_poll"
            waited=$((waited + ${lock_poll%.*} + 1))
            continue
        fi
        printf '%s\n' "$out" >&2
        return 1
    done
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for pkg in $(want_apt); do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "install-deps: apt-get install ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt_update
        apt-get install -y -q -o DPkg::Lock::Timeout="$lock_timeout" "${missing[@]}"
    fi
fi

# The venv uses Debian's interpreter: the same one the images run, and the one the
# benchmark compares against.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
stamp=.venv/.deps-$profile
if [ ! -x .venv/bin/python ] || [ ! -f "$stamp" ] || \
   [ -n "$(find setup.cfg deps -newer "$stamp" 2>/dev/null)" ]; then
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    reqs=()
    for f in "${pip_files[@]}"; do reqs+=(-r "$f"); done
    .venv/bin/pip install -q --disable-pip-version-check -e . "${reqs[@]}"
    touch "$stamp"
fi
