#!/usr/bin/env bash
# The load test of `kchain serve` with oha (an HTTP load generator), side by side with the CLI
# on the same machine, the same data and the same log settings (embedded log, --fsync batch):
#
#   1. produce in batches of 1,000 records over HTTP, as a ratio of `kchain produce --batch
#      1000` appending the same records (target >= 0.5);
#   2. single-record produce at a fixed 1,000 requests/s: latency p50 and p99 (target < 10 ms);
#   3. the read endpoints: requests/s of each at concurrency 8 for a few seconds.
#
# Usage: scripts/load.sh [KCHAIN_BINARY]   (default target/release/kchain; build it with
# `cargo build --release -p kchain-cli`). RECORDS (default 100000) sets the size of run 1,
# SECS (default 5) the length of the read runs. oha is installed once into
# ~/.cache/kchain/tools when missing (a few minutes of building). Needs jq and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
KCHAIN="${1:-target/release/kchain}"
RECORDS="${RECORDS:-100000}"
SECS="${SECS:-5}"
TOOLS="$HOME/.cache/kchain/tools"
OHA="$TOOLS/bin/oha"
if [ ! -x "$OHA" ]; then
    echo "load.sh: installing oha into $TOOLS (once)" >&2
    nice cargo install oha --locked --root "$TOOLS" >&2
fi
[ -x "$KCHAIN" ] || { echo "load.sh: no kchain binary at $KCHAIN" >&2; exit 1; }

WORK=$(mktemp -d)
export KCHAIN_DATA_DIR="$WORK/data" KCHAIN_CONFIG_DIR="$WORK/config"
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill -TERM "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

"$KCHAIN" -q keygen --name load >/dev/null
TOKEN="load-test-token-0123456789"
printf '[[token]]\nname = "load"\ntoken = "%s"\ntopics = ["*"]\n' "$TOKEN" >"$WORK/tokens.toml"

# The same 1,000 records for both: about 100 bytes each.
python3 - "$WORK" <<'EOF'
import json, sys
values = [f"order {i:06d} customer {i % 97:02d} " + "x" * 70 for i in range(1000)]
open(f"{sys.argv[1]}/batch.txt", "w").write("".join(v + "\n" for v in values))
json.dump({"records": [{"value": v} for v in values]}, open(f"{sys.argv[1]}/batch.json", "w"))
json.dump({"value": values[0]}, open(f"{sys.argv[1]}/one.json", "w"))
EOF
BATCHES=$((RECORDS / 1000))
for _ in $(seq "$BATCHES"); do cat "$WORK/batch.txt"; done >"$WORK/cli.txt"

# 1a. The CLI's chained append of RECORDS records in signed batches of 1,000.
"$KCHAIN" -q topic create cli >/dev/null
start=$(date +%s.%N)
"$KCHAIN" -q produce cli --batch 1000 --file "$WORK/cli.txt" >/dev/null
cli_secs=$(echo "$(date +%s.%N) - $start" | bc -l)
cli_rate=$(echo "$RECORDS / $cli_secs" | bc -l)

# Starts the server with `--fsync $1` (stopping the one running), and creates a topic.
start_server() {
    if [ -n "$SERVER" ]; then kill -TERM "$SERVER" && wait "$SERVER" || true; fi
    rm -f "$WORK/serve.out"
    "$KCHAIN" -q --fsync "$1" serve --listen 127.0.0.1:0 --tokens "$WORK/tokens.toml" \
        >"$WORK/serve.out" 2>"$WORK/serve.err" &
    SERVER=$!
    for _ in $(seq 50); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
    URL=$(sed -n 's/^kchain serve listening on //p' "$WORK/serve.out")
    curl -sf -X POST "$URL/api/v1/topics" -H "$AUTH" -H "Content-Type: application/json" \
        -d "{\"name\": \"$2\"}" >/dev/null
}
AUTH="Authorization: Bearer $TOKEN"
start_server batch http

# oha's JSON summary of a run (the flag's name changed in oha 1.5).
oha_json() {
    if "$OHA" --help | grep -q -- '--output-format'; then
        "$OHA" --no-tui --output-format json "$@"
    else
        "$OHA" --no-tui -j "$@"
    fi
}
ok_or_die() { # no answer but 200, or show what came back
    jq -e '.statusCodeDistribution | keys - ["200"] | length == 0' <<<"$1" >/dev/null ||
        { echo "load.sh: $2: answers $(jq -c .statusCodeDistribution <<<"$1")" >&2
          cat "$WORK/serve.err" >&2; exit 1; }
}

# 1b. The same records over HTTP, 1,000 per request, two connections.
run=$(oha_json -n "$BATCHES" -c 2 -m POST -H "$AUTH" -T application/json -D "$WORK/batch.json" \
    "$URL/api/v1/topics/http/records")
ok_or_die "$run" "batch produce"
http_rate=$(jq '.summary.requestsPerSec * 1000' <<<"$run")

# 2. Single records at a fixed 1,000 requests/s for 5 s, after 1 s of the same to warm up
# (the writer opens and reads its chain back, the first checkpoint is signed): with an fsync
# before each append returns (the default), then with `--fsync interval:100`.
single() {
    oha_json -n 1000 -q 1000 -c 16 -m POST -H "$AUTH" -T application/json -D "$WORK/one.json" \
        "$URL/api/v1/topics/$1/records" >/dev/null
    run=$(oha_json -n 5000 -q 1000 -c 16 -m POST -H "$AUTH" -T application/json \
        -D "$WORK/one.json" "$URL/api/v1/topics/$1/records")
    ok_or_die "$run" "single produce"
    jq -r '[.summary.requestsPerSec, .latencyPercentiles.p50 * 1000,
            .latencyPercentiles.p99 * 1000] | @tsv' <<<"$run"
}
start_server batch single
read -r single_rate p50 p99 < <(single single)
start_server interval:100 interval
read -r interval_rate ip50 ip99 < <(single interval)

printf '| measure | value |\n|---|---|\n'
printf '| CLI `produce --batch 1000`, %s records | %.0f records/s |\n' "$RECORDS" "$cli_rate"
printf '| HTTP produce, batches of 1,000 (oha -c 2) | %.0f records/s |\n' "$http_rate"
printf '| ratio HTTP / CLI (target >= 0.5) | %.2f |\n' "$(echo "$http_rate / $cli_rate" | bc -l)"
printf '| single-record produce at 1,000 req/s (%.0f achieved), `--fsync batch`: p50 / p99 (target < 10 ms) | %.2f / %.2f ms |\n' \
    "$single_rate" "$p50" "$p99"
printf '| the same with `--fsync interval:100` (%.0f achieved): p50 / p99 | %.2f / %.2f ms |\n' \
    "$interval_rate" "$ip50" "$ip99"

# 3. The read endpoints, each for SECS seconds at concurrency 8.
for path in /healthz /api/v1/topics /api/v1/topics/interval /api/v1/topics/interval/checkpoint \
    "/api/v1/topics/interval/partitions/0/records?limit=100" \
    "/api/v1/topics/interval/partitions/0/records?from=5900&limit=100"; do
    run=$(oha_json -z "${SECS}s" -c 8 "$URL$path")
    ok_or_die "$run" "GET $path"
    printf '| GET `%s` (6,000 records, c 8) | %.0f requests/s |\n' "$path" \
        "$(jq '.summary.requestsPerSec' <<<"$run")"
done
