#!/usr/bin/env bash
# kchain's HTTP API from the shell: create a chained topic, produce a batch, read the records
# back verified, and verify the topic. Needs curl and jq, and a running `kchain serve`:
#   KCHAIN_URL=http://127.0.0.1:8080 KCHAIN_TOKEN=... KCHAIN_TOPIC=orders examples/curl.sh
set -euo pipefail
URL="${KCHAIN_URL:-http://127.0.0.1:8080}"
TOPIC="${KCHAIN_TOPIC:-orders}"
AUTH="Authorization: Bearer ${KCHAIN_TOKEN:?set KCHAIN_TOKEN to a token of the tokens file}"
JSON="Content-Type: application/json"

# Create the topic (409: it exists already, which is fine).
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/api/v1/topics" -H "$AUTH" -H "$JSON" \
    -d "{\"name\": \"$TOPIC\", \"partitions\": 1}")
[ "$status" = 201 ] || [ "$status" = 409 ] || { echo "create: HTTP $status" >&2; exit 1; }

# Produce a batch: text values, a key, a header, and bytes as base64.
curl -sf -X POST "$URL/api/v1/topics/$TOPIC/records" -H "$AUTH" -H "$JSON" -d '{"records": [
    {"key": "customer-7", "value": "2 apples", "headers": {"source": "curl"}},
    {"key": "customer-7", "value": "3 pears"},
    {"value_b64": "//4="}]}' | jq -c '.records[]'

# Read the records back, verified from genesis, a page at a time.
curl -sf "$URL/api/v1/topics/$TOPIC/partitions/0/records?limit=100" | jq -c '.records[] | {offset, key, value}'

# Verify the topic: "exit" is what `kchain verify` would exit with (0 verified, 3 findings).
report=$(curl -sf "$URL/api/v1/topics/$TOPIC/verify")
echo "verify: ok=$(jq .ok <<<"$report") entries=$(jq '[.partitions[].entries] | add' <<<"$report")"
exit "$(jq .exit <<<"$report")"
