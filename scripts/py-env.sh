#!/usr/bin/env bash
# A Python virtual environment with the third-party packages that kchain's interop tests use:
# the Kafka clients (kafka-python, confluent-kafka) and, for the witness client written from
# the tlog-witness spec, `cryptography` (Ed25519); for the archive tests, moto (an S3-compatible
# server on loopback); for the HTTP API's example client (examples/client.py), requests.
# Cached in ~/.cache/kchain/venv; a venv that lacks a package gets it added, one that has them
# all is left as it is. Prints its python.
set -euo pipefail
VENV="${KCHAIN_VENV:-$HOME/.cache/kchain/venv}"
if ! "$VENV/bin/python" -c "import kafka, confluent_kafka, cryptography, moto.server, requests" 2>/dev/null; then
    echo "py-env.sh: installing kafka-python, confluent-kafka, cryptography, moto and requests in $VENV" >&2
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "kafka-python>=2.2,<4" "confluent-kafka>=2.6,<3" "cryptography>=42,<51" "moto[server]>=5,<6" \
        "requests>=2.31,<3" >&2
fi
echo "$VENV/bin/python"
