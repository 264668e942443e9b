#!/bin/sh
# Makes sure Debian's headless-capable Chromium is installed (for the explorer's browser test,
# crates/kchain-cli/tests/explorer.rs) and prints its path. It installs only when
# /usr/bin/chromium is absent, with apt-get, as root (CI runs as root on Debian).
set -eu
CHROMIUM=/usr/bin/chromium
if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "chromium.sh: $CHROMIUM is missing and installing it needs root (apt-get install chromium)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "chromium.sh: installing Debian's chromium" >&2
    apt-get update -qq >&2 || true
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
fi
echo "$CHROMIUM"
