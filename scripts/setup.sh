#!/usr/bin/env bash
# Create (or reuse) .venv and install mt with its dependencies. Sourced by the other scripts.
# torch: if the venv has none, install the CPU build torch==2.13.0, so that pip never pulls a
# multi-GB CUDA build onto a machine without CUDA. CUDA users: install your CUDA torch into
# .venv first (see the README); this script then keeps it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install --quiet "torch==2.13.0"
fi
if ! .venv/bin/python -c "import mt, cli" 2>/dev/null || [ pyproject.toml -nt .venv/.mt-installed ]; then
  .venv/bin/pip install --quiet -e ".[dev]"
  touch .venv/.mt-installed
fi
export PATH="$root/.venv/bin:$PATH"
