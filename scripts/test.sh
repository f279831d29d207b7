#!/usr/bin/env bash
# The test command: sets up everything it needs on a fresh machine, then lints and tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_venv.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
bash scripts/install_ipfs_node.sh
.venv/bin/python -m pytest -q "$@"
