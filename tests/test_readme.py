"""The README's Python API example runs as printed (the shipped checkpoint, on CPU)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_python_example_of_the_readme_runs(monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    monkeypatch.chdir(ROOT)
    exec(compile(example, "README.md", "exec"), {})
    text_line, labels_line, alignment_line = capsys.readouterr().out.splitlines()
    assert text_line.split()[0] and float(text_line.split()[-1]) < 0
    assert "['I', 'love', 'machine', 'learning', '</s>']" in labels_line and labels_line.rstrip().endswith(")")
    assert all(0 <= int(link.split("-")[0]) < 4 for link in alignment_line.split())
