#!/usr/bin/env bash
# The main job: the demo pipeline on the embedded default data (sets itself up on a fresh machine).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_venv.sh
.venv/bin/xlstm-data demo "$@"
