#!/usr/bin/env bash
# The Go toolchain and the Go reference implementation of tlog-tiles and signed notes
# (golang.org/x/mod/sumdb/tlog, sumdb/note) for kchain's archive interop test, from Debian's
# packages: golang-go and golang-golang-x-mod-dev (sources under /usr/share/gocode). Installs
# them with apt-get only when missing (CI runs as root on Debian), so that the test builds its
# Go program with no network: GOPATH=/usr/share/gocode, GO111MODULE=off. Prints the go binary.
set -euo pipefail
GOCODE=/usr/share/gocode
have() {
    command -v go >/dev/null 2>&1 && [ -d "$GOCODE/src/golang.org/x/mod/sumdb/tlog" ] &&
        [ -d "$GOCODE/src/golang.org/x/mod/sumdb/note" ]
}
if ! have; then
    echo "go-env.sh: installing golang-go and golang-golang-x-mod-dev" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q golang-go golang-golang-x-mod-dev >&2 || {
        $SUDO apt-get update -q >&2
        $SUDO apt-get install -y -q golang-go golang-golang-x-mod-dev >&2
    }
    have || { echo "go-env.sh: go or $GOCODE/src/golang.org/x/mod/sumdb is missing" >&2; exit 1; }
fi
command -v go
