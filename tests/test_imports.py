"""The import graph of mt's modules (scripts/check_imports.py): no circle, layers respected."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_module_circle_and_no_import_from_a_lower_layer_to_a_higher_one():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_imports.py")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no circle" in result.stdout


def test_config_imports_nothing_of_mt_but_its_errors():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from check_imports import imports
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    modules = {".".join(path.relative_to(ROOT).with_suffix("").parts) for path in (ROOT / "mt").rglob("*.py")}
    assert imports(ROOT / "mt" / "config.py", modules) == {"mt.errors"}
