#!/usr/bin/env bash
# Every benchmark of docs/benchmarks.md in one run, on this machine, with a broker of its own:
#
#   1. `kchain bench` on the embedded log (REPEAT interleaved repetitions, RECORDS records);
#   2. `kchain -b BROKER bench --delete-topics` on a private tansu broker (memory engine),
#      KAFKA_RECORDS records, each repetition's topics deleted when it ends (the memory engine
#      slows as it fills);
#   3. `kchain bench bridge` on both backends, REPEAT runs each of BRIDGE_ROUNDS rounds
#      (chained produce and the bridge alternating which goes first); the summary gives the
#      median and spread of every round's ratio, pooled over the runs, and the CPU per record
#      of each side (kchain's and, on Kafka, the broker's);
#   4. `kchain -b BROKER bench peer`: the tutorial's Python node beside kchain's ledger;
#   5. `kchain bench chart` of 1 and 2 into OUT/benchmarks.svg, and OUT/summary.md: every
#      ratio's median, spread and verdict.
#
# Usage: scripts/bench.sh [KCHAIN_BINARY]   (default target/release/kchain; build it with
# `cargo build --release -p kchain-cli`). Environment: OUT (default target/bench), REPEAT
# (default 5), RECORDS (default 1000000), KAFKA_RECORDS (default 300000), BRIDGE_RECORDS
# (default 200000), BRIDGE_ROUNDS (default 5), SKIP (space-separated: embedded kafka bridge peer). The broker is
# installed by scripts/broker.sh and the Python of the peer run by scripts/py-env.sh when
# missing. Run it on an otherwise idle machine: the load average is printed with the results.
#
# Memory handed back to a hypervisor: on a virtual machine whose kernel reports free pages to
# its host (virtio-balloon free page reporting, `/sys/module/page_reporting`), memory that one
# measurement frees (its log's page cache, deleted with its directory) is given back to the
# host, and the next measurement's first touch of it is a page fault on the host: the log's
# copy into fresh page-cache pages then costs 3-7 times the CPU, in whichever measurement gets
# such pages (docs/benchmarks.md, "Memory the machine gives back"). With HOLD_FREED_MS=N (as
# root, on a kernel that has the `min_free_ms` parameter) the script holds freed pages back
# from reporting for N ms during the run and restores the old value on exit; either way the
# setting in force is printed in OUT/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
KCHAIN="$(realpath "${1:-target/release/kchain}")"
OUT="${OUT:-target/bench}"
REPEAT="${REPEAT:-5}"
RECORDS="${RECORDS:-1000000}"
KAFKA_RECORDS="${KAFKA_RECORDS:-300000}"
BRIDGE_RECORDS="${BRIDGE_RECORDS:-200000}"
BRIDGE_ROUNDS="${BRIDGE_ROUNDS:-5}"
SKIP=" ${SKIP:-} "
[ -x "$KCHAIN" ] || { echo "bench.sh: no kchain binary at $KCHAIN" >&2; exit 1; }
mkdir -p "$OUT"
skip() { [[ "$SKIP" == *" $1 "* ]]; }
say() { echo "bench.sh: $* (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2; }

REPORTING=/sys/module/page_reporting/parameters
REPORTING_WAS=""
if [ -n "${HOLD_FREED_MS:-}" ]; then
    [ -w "$REPORTING/min_free_ms" ] || { echo "bench.sh: HOLD_FREED_MS needs a writable $REPORTING/min_free_ms" >&2; exit 1; }
    REPORTING_WAS=$(cat "$REPORTING/min_free_ms")
    echo "$HOLD_FREED_MS" >"$REPORTING/min_free_ms"
fi
# What the run measured under: free page reporting's settings, where the kernel has them.
reporting() {
    if [ -d "$REPORTING" ]; then
        for f in page_reporting_order min_free_ms; do
            [ -r "$REPORTING/$f" ] && printf '%s=%s ' "$f" "$(cat "$REPORTING/$f")"
        done
    else
        printf 'none'
    fi
}
REPORTING_NOW=$(reporting)

BROKER_DIR=$(mktemp -d)
cleanup() {
    KCHAIN_BROKER_DIR="$BROKER_DIR" scripts/broker.sh stop >/dev/null 2>&1 || true
    rm -rf "$BROKER_DIR"
    if [ -n "$REPORTING_WAS" ]; then echo "$REPORTING_WAS" >"$REPORTING/min_free_ms"; fi
}
trap cleanup EXIT
BROKER=""
broker() {
    if [ -z "$BROKER" ]; then
        BROKER=$(KCHAIN_BROKER_DIR="$BROKER_DIR" scripts/broker.sh start --storage memory:// --watch-pid $$)
    fi
    echo "$BROKER"
}
# A broker holding nothing: tansu's memory engine keeps every record in memory (several GB
# after the Kafka bench), so each bridge run starts on an empty broker, as the first did.
fresh_broker() {
    KCHAIN_BROKER_DIR="$BROKER_DIR" scripts/broker.sh stop >/dev/null 2>&1 || true
    KCHAIN_BROKER_DIR="$BROKER_DIR" scripts/broker.sh start --storage memory:// --watch-pid $$
}

if ! skip embedded; then
    say "embedded log: $REPEAT repetitions of $RECORDS records"
    "$KCHAIN" bench --repeat "$REPEAT" --records "$RECORDS" --json >"$OUT/embedded.json"
fi
if ! skip kafka; then
    b=$(broker)
    say "Kafka ($b): $REPEAT repetitions of $KAFKA_RECORDS records"
    "$KCHAIN" -b "$b" bench --repeat "$REPEAT" --records "$KAFKA_RECORDS" --delete-topics \
        --json >"$OUT/kafka.json"
fi
if ! skip bridge; then
    : >"$OUT/bridge.jsonl"
    for i in $(seq "$REPEAT"); do
        say "bridge, embedded log, run $i"
        "$KCHAIN" bench bridge --records "$BRIDGE_RECORDS" --rounds "$BRIDGE_ROUNDS" --json >>"$OUT/bridge.jsonl"
        b=$(fresh_broker)
        say "bridge, Kafka, run $i"
        "$KCHAIN" -b "$b" bench bridge --records "$BRIDGE_RECORDS" --rounds "$BRIDGE_ROUNDS" \
            --broker-pid "$(cat "$BROKER_DIR/pid")" --json >>"$OUT/bridge.jsonl"
    done
fi
if ! skip peer; then
    b=$(broker)
    say "peer run on $b"
    KCHAIN_PYTHON="${KCHAIN_PYTHON:-$(scripts/py-env.sh)}" "$KCHAIN" -b "$b" bench peer --json >"$OUT/peer.json"
fi
charts=()
for f in embedded kafka; do [ -s "$OUT/$f.json" ] && charts+=("$OUT/$f.json"); done
if [ "${#charts[@]}" -gt 0 ]; then
    "$KCHAIN" bench chart "${charts[@]}" >"$OUT/benchmarks.svg"
fi
python3 - "$OUT" "$REPORTING_NOW" <<'EOF'
import json, os, statistics, sys
out = sys.argv[1]
lines = [f"load average at the end: {open('/proc/loadavg').read().split()[:3]}",
         f"free page reporting during the run: {sys.argv[2].strip()}", ""]
for name in ("embedded", "kafka"):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path) or not os.path.getsize(path):
        continue
    run = json.loads(open(path).read().strip().splitlines()[-1])
    lines += [f"## {name}", "", "| ratio | median | min-max | target |", "|---|---:|---:|---|"]
    for k, v in run["ratios"].items():
        t = v.get("target")
        verdict = "" if t is None else f"{'>=' if t else ''} {t} {v.get('rule', '')}: {'met' if v.get('met') else 'MISSED'}"
        lines.append(f"| {k} | {v['median']:.3f} | {v['min']:.3f}-{v['max']:.3f} | {verdict} |")
    lines += ["", "| rate | median | min-max |", "|---|---:|---:|"]
    for k, v in run["rates"].items():
        lines.append(f"| {k} | {v['median']:,.0f} | {v['min']:,.0f}-{v['max']:,.0f} |")
    lines.append("")
path = os.path.join(out, "bridge.jsonl")
if os.path.exists(path):
    runs = [json.loads(l) for l in open(path) if l.strip()]
    lines += ["## bridge", ""]
    for backend in ("embedded", "kafka"):
        rs = [r for r in runs if str(r.get("backend", "")).lower().startswith(backend)]
        if not rs:
            continue
        pooled = [x for r in rs for x in r.get("ratios", [r.get("ratio")]) if isinstance(x, (int, float))]
        if pooled:
            lines.append(f"- {backend} ratio of every round: median {statistics.median(pooled):.3f}, "
                         f"min {min(pooled):.3f}, max {max(pooled):.3f} ({len(pooled)} rounds)")
        nums = {k for r in rs for k in r
                if k in ("ratio", "cpu_ratio") or k.endswith(("_per_s", "_ms", "_per_record"))}
        for k in sorted(nums):
            vals = [r[k] for r in rs if isinstance(r.get(k), (int, float))]
            lines.append(f"- {backend} {k}: median {statistics.median(vals):.3f}, "
                         f"min {min(vals):.3f}, max {max(vals):.3f} ({len(vals)} runs)")
    lines.append("")
path = os.path.join(out, "peer.json")
if os.path.exists(path):
    lines += ["## peer", "", "```", open(path).read().strip(), "```", ""]
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines))
print("\n".join(lines))
EOF
