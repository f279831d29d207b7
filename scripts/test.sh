#!/usr/bin/env bash
# The test command: sets up everything it needs on a fresh machine, then lints and tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_venv.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
bash scripts/install_ipfs_node.sh
bash scripts/install_browser.sh
# The HTML report test must run here, not skip: the browser was just installed.
XLSTM_DATA_REQUIRE_BROWSER=1 .venv/bin/python -m pytest -q "$@"
