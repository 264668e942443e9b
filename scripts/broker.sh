#!/usr/bin/env bash
# A private Kafka-API broker (tansu) on loopback, for kchain's tests and for development.
#
#   scripts/broker.sh install
#       Installs tansu into $KCHAIN_TOOLS (default ~/.cache/kchain/tools) unless it is there
#       already. The build takes about 10-15 minutes; the binary is reused afterwards.
#   scripts/broker.sh start [--port P] [--storage memory://|sqlite://PATH] [--watch-pid PID]
#                           [--state-dir DIR]
#       Starts tansu on 127.0.0.1 (a free port unless --port), waits until it answers a Kafka
#       ApiVersions request, and prints the bootstrap address (127.0.0.1:PORT) on stdout.
#       memory:// keeps records in the broker's memory (lost when it stops); sqlite://PATH
#       keeps them in the SQLite file PATH (relative to the current directory), so that a
#       restarted broker still has them. With --watch-pid, the broker is stopped once process
#       PID has exited (tests pass their own pid, so no broker outlives its test run).
#   scripts/broker.sh stop [--state-dir DIR]
#   scripts/broker.sh status [--state-dir DIR]
#       Prints "running pid=... port=... storage=..." (exit 0) or "not running" (exit 1).
#
# State (pid, port, storage, log) lives in --state-dir, or $KCHAIN_BROKER_DIR, or
# ${TMPDIR:-/tmp}/kchain-broker-$UID: one broker per state directory, so tests that want a
# broker of their own pass a directory of their own.
#
# Environment: KCHAIN_TOOLS (install root), KCHAIN_TANSU (a tansu binary to use instead),
# KCHAIN_BROKER_DIR (state directory), KCHAIN_BROKER_TIMEOUT (seconds to wait for the broker
# to answer; default 30), RUST_LOG (tansu's log level; default warn).
set -euo pipefail

TOOLS="${KCHAIN_TOOLS:-$HOME/.cache/kchain/tools}"
TANSU="${KCHAIN_TANSU:-$TOOLS/bin/tansu}"
TANSU_VERSION="0.6.0"

die() { echo "broker.sh: $*" >&2; exit 1; }
say() { echo "broker.sh: $*" >&2; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

cmd_install() {
    if [[ -x "$TANSU" ]]; then
        say "tansu is installed: $TANSU"
        return 0
    fi
    command -v cargo >/dev/null || die "cargo is needed to install tansu"
    say "installing tansu $TANSU_VERSION into $TOOLS (about 10-15 minutes, once)"
    cargo install --locked --root "$TOOLS" tansu --version "$TANSU_VERSION" \
        --features dynostore,libsql >&2
    [[ -x "$TANSU" ]] || die "cargo install finished but $TANSU is missing"
}

# --- state -----------------------------------------------------------------------------

# The state directory, as an absolute path (the broker runs in /).
state_dir() {
    local dir="${STATE_DIR:-${KCHAIN_BROKER_DIR:-${TMPDIR:-/tmp}/kchain-broker-$(id -u)}}"
    [[ "$dir" == /* ]] || dir="$PWD/$dir"
    echo "$dir"
}

# The pid of the broker recorded in the state directory, if that process is still tansu.
running_pid() {
    local dir pid
    dir="$(state_dir)"
    [[ -f "$dir/pid" ]] || return 1
    pid="$(cat "$dir/pid")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    # Guards against a recycled pid: the process must be the tansu we started.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--listener-url" || return 1
    echo "$pid"
}

# --- the Kafka probe -------------------------------------------------------------------

# Sends ApiVersions v0 (correlation id 7, client id "kchain") to 127.0.0.1:$1 and succeeds
# when the broker answers with that correlation id and error code 0.
probe() {
    local port="$1" resp
    { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    # size 16 | api key 18 | version 0 | correlation id 7 | client id (len 6) "kchain"
    printf '\x00\x00\x00\x10\x00\x12\x00\x00\x00\x00\x00\x07\x00\x06kchain' >&3 || {
        exec 3<&- 3>&-
        return 1
    }
    resp="$(timeout 2 head -c 10 <&3 | od -An -tx1 | tr -d ' \n' || true)"
    exec 3<&- 3>&-
    # response: size (4 bytes) | correlation id | error code
    [[ "${resp:8:8}" == "00000007" && "${resp:16:4}" == "0000" ]]
}

# A TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
    local port i
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' &&
            return 0
    fi
    for i in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# Stops broker $2 once process $1 has exited (or at once if $1 is gone already). The
# watchdog runs in its own session, so a Ctrl-C that kills the tests does not kill it.
watchdog() {
    setsid bash -c '
        while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
        if kill -0 "$2" 2>/dev/null &&
            tr "\0" " " <"/proc/$2/cmdline" 2>/dev/null | grep -q -- "--listener-url"; then
            kill "$2"
            sleep 5
            kill -9 "$2" 2>/dev/null || true
        fi
    ' watchdog "$1" "$2" </dev/null >/dev/null 2>&1 &
}

# --- commands --------------------------------------------------------------------------

cmd_start() {
    local port="" storage="memory://" watch="" dir pid url engine_url tries deadline
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --port) port="${2:?--port needs a value}"; shift 2 ;;
            --watch-pid) watch="${2:?--watch-pid needs a value}"; shift 2 ;;
            --storage) storage="${2:?--storage needs a value}"; shift 2 ;;
            *) die "start: unknown argument $1" ;;
        esac
    done
    [[ -x "$TANSU" ]] || die "tansu is not installed at $TANSU (run: $0 install)"
    dir="$(state_dir)"
    mkdir -p "$dir"
    if pid="$(running_pid)"; then
        say "already running (pid $pid) in $dir"
        echo "127.0.0.1:$(cat "$dir/port")"
        return 0
    fi
    case "$storage" in
        memory://*) engine_url="memory://tansu/" ;;
        sqlite://*)
            local path="${storage#sqlite://}"
            [[ -n "$path" ]] || die "sqlite:// needs a file path, e.g. sqlite://broker.db"
            mkdir -p "$(dirname "$path")"
            path="$(cd "$(dirname "$path")" && pwd)/$(basename "$path")"
            # tansu resolves the URL's path against its working directory, which is /.
            engine_url="sqlite://$path"
            storage="sqlite://$path"
            ;;
        *) die "unsupported storage $storage (memory:// or sqlite://PATH)" ;;
    esac

    deadline="${KCHAIN_BROKER_TIMEOUT:-30}"
    for tries in 1 2 3 4 5; do
        local p="${port:-$(free_port)}"
        url="tcp://127.0.0.1:$p"
        (
            cd /
            export RUST_LOG="${RUST_LOG:-warn}"
            # setsid: the broker outlives this script and ignores the caller's Ctrl-C.
            exec setsid "$TANSU" broker \
                --cluster-id kchain \
                --listener-url "$url" \
                --advertised-listener-url "$url" \
                --storage-engine "$engine_url" \
                </dev/null >>"$dir/tansu.log" 2>&1
        ) &
        pid=$!
        echo "$pid" >"$dir/pid"
        echo "$p" >"$dir/port"
        echo "$storage" >"$dir/storage"
        local waited=0
        while ((waited < deadline * 10)); do
            if ! kill -0 "$pid" 2>/dev/null; then
                break
            fi
            if probe "$p"; then
                say "tansu (pid $pid) answers on 127.0.0.1:$p, storage $storage, state in $dir"
                [[ -z "$watch" ]] || watchdog "$watch" "$pid"
                echo "127.0.0.1:$p"
                return 0
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            rm -f "$dir/pid" "$dir/port"
            die "tansu did not answer on 127.0.0.1:$p within ${deadline}s (log: $dir/tansu.log)"
        fi
        rm -f "$dir/pid" "$dir/port"
        # It exited: most likely the port was taken between choosing and binding it.
        [[ -z "$port" ]] || break
        say "tansu exited at start (try $tries); trying another port"
    done
    die "tansu did not start (log: $dir/tansu.log)"
}

cmd_stop() {
    local dir pid i
    dir="$(state_dir)"
    if ! pid="$(running_pid)"; then
        rm -f "$dir/pid" "$dir/port"
        say "not running"
        return 0
    fi
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "tansu (pid $pid) ignored SIGTERM for 10s; killing it"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/pid" "$dir/port"
    say "stopped tansu (pid $pid)"
}

cmd_status() {
    local dir pid
    dir="$(state_dir)"
    if pid="$(running_pid)"; then
        echo "running pid=$pid port=$(cat "$dir/port") storage=$(cat "$dir/storage" 2>/dev/null) state=$dir"
        return 0
    fi
    echo "not running (state $dir)"
    return 1
}

# --- main ------------------------------------------------------------------------------

[[ $# -ge 1 ]] || usage
command="$1"
shift
args=()
STATE_DIR=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --state-dir) STATE_DIR="${2:?--state-dir needs a value}"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
case "$command" in
    install) cmd_install ;;
    start) cmd_start ${args[@]+"${args[@]}"} ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    -h | --help | help) usage ;;
    *) die "unknown command $command (install, start, stop, status)" ;;
esac
