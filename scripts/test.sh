#!/usr/bin/env bash
# The whole test suite, as the README gives it and as CI runs it: embedded and Kafka
# backends, and interop with third-party Kafka clients. It installs what it needs once
# (tansu into ~/.cache/kchain/tools, a Python venv into ~/.cache/kchain/venv) and each test
# binary starts and stops its own private broker on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/broker.sh install
KCHAIN_PYTHON="$(./scripts/py-env.sh)"
export KCHAIN_PYTHON
cargo test --workspace --all-features --locked "$@"
