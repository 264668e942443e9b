#!/usr/bin/env bash
# A Python virtual environment with the third-party Kafka clients that kchain's interop tests
# use (kafka-python, confluent-kafka), cached in ~/.cache/kchain/venv. Prints its python.
set -euo pipefail
VENV="${KCHAIN_VENV:-$HOME/.cache/kchain/venv}"
if ! "$VENV/bin/python" -c "import kafka, confluent_kafka, moto.server" 2>/dev/null; then
    echo "py-env.sh: creating $VENV with kafka-python and confluent-kafka" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "kafka-python>=2.2,<4" "confluent-kafka>=2.6,<3" "moto[server]>=5,<6" >&2
fi
echo "$VENV/bin/python"
