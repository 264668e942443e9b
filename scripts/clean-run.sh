#!/usr/bin/env bash
# N clean records (default 10 million) through the release binary on the embedded log:
# produce, verify, pin, verify again; every verify must exit 0 with zero findings (a false
# alarm on a clean log is a defect). Not part of the test suite: it is benchmark-sized.
# Build first: cargo build --release -p kchain-cli. Usage: scripts/clean-run.sh [N]
set -euo pipefail
N="${1:-10000000}"
K="${KCHAIN_BIN:-$(dirname "$0")/../target/release/kchain}"
D=$(mktemp -d)
export KCHAIN_DATA_DIR=$D/data KCHAIN_CONFIG_DIR=$D/config
$K keygen --name acme >/dev/null
$K topic create events --partitions 4 >/dev/null
start=$(date +%s.%N)
awk -v N="$N" 'BEGIN { for (i = 0; i < N; i++) printf "key-%d\t{\"seq\":%d,\"event\":\"scan\",\"site\":\"dock-%d\"}\n", i % 997, i, i % 13 }' \
  | $K --fsync never produce events -K $'\t' --batch 8192 | tail -2
mid=$(date +%s.%N)
$K verify events --json > $D/verify.json; echo "verify exit $?"
end=$(date +%s.%N)
python3 - "$D/verify.json" "$start" "$mid" "$end" <<'PY'
import json, sys
v = json.load(open(sys.argv[1])); s, m, e = map(float, sys.argv[2:])
n = sum(p["entries"] for p in v["partitions"])
f = [p["finding"] for p in v["partitions"] if p["finding"]]
print(f"entries verified: {n}, findings: {len(f)}, ok: {v['ok']}, pending: {sum(p.get('pending',0) for p in v['partitions'])}")
print(f"produce {m-s:.1f} s ({n/(m-s):,.0f} records/s), verify {e-m:.1f} s ({n/(e-m):,.0f} records/s)")
PY
$K trust pin events | tail -1
$K verify events > /dev/null && echo "verify after pin: exit 0"
rm -rf "$D"
