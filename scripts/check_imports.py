"""The import graph of ``mt``'s modules: no circle, and no import from a lower layer to a higher one.

    python scripts/check_imports.py          # prints the layers and every violation; exit 1 on any

Reads the source with ``ast`` (nothing is imported), counting imports inside functions too: a
function-level import that closes a circle still ties the modules together (those under ``if
TYPE_CHECKING:`` are skipped: they never run). Each module belongs
to the first layer of ``LAYERS`` that names it (a package by its name, e.g. ``mt.models`` covers
``mt.models.rnn``); a module may import from its own layer or lower ones.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: the data flow text -> pieces -> ids -> batches -> model -> hypotheses -> text -> scores, then its users.
LAYERS = [
    ("errors and the package's version", ["mt.errors", "mt"]),
    ("configuration and files", ["mt.config", "mt.files", "mt.device", "mt.distributed"]),
    ("text and pieces", ["mt.data", "mt.tokenizer", "mt.dictionary", "mt.glossary", "mt.terminology", "mt.metrics"]),
    ("ids and batches", ["mt.store", "mt.batching"]),
    ("models", ["mt.models", "mt.loss", "mt.step"]),
    ("search", ["mt.search", "mt.constraints", "mt.ensemble"]),
    ("checkpoints", ["mt.checkpoint", "mt.rundir", "mt.average", "mt.packing"]),
    ("pipelines", ["mt.translate", "mt.ct2", "mt.engines", "mt.evaluate", "mt.train", "mt.markup"]),
    ("views and front ends", ["mt.alignment", "mt.plot", "mt.serve", "mt.console", "mt.stopping"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The ``mt`` modules that ``path`` imports (``from mt.x import y`` counts ``mt.x.y`` when that is a module)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for block in ast.walk(tree):  # ``if TYPE_CHECKING:`` imports are for type checkers only, never run
        if isinstance(block, ast.If) and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING":
            block.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # a submodule (from mt import rundir), else the module itself
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return {name for name in found if name in modules}


def layer_of(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if any(module == member or (member != "mt" and module.startswith(member + ".")) for member in members):
            return index
    raise SystemExit(f"{module} is in no layer of scripts/check_imports.py: add it to LAYERS")


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    paths = {module_name(path): path for path in sorted((ROOT / "mt").rglob("*.py"))}
    graph = {name: imports(path, set(paths)) - {name} for name, path in paths.items()}
    for number, (title, members) in enumerate(LAYERS):
        print(f"layer {number} ({title}): {', '.join(members)}")
    problems = [f"circle: {' <-> '.join(component)}" for component in circles(graph)]
    problems += [f"{module} (layer {layer_of(module)}) imports {other} (layer {layer_of(other)})"
                 for module in sorted(graph) for other in sorted(graph[module]) if layer_of(other) > layer_of(module)]
    print("\n".join(problems) if problems else f"{len(graph)} modules: no circle, no import from a lower layer to a higher one")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
