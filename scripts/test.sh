#!/usr/bin/env bash
# Set up .venv if needed, then run the test suite (tests needing ../shared/data skip without it).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec python -m pytest -q "$@"
