"""Imports run one way: the layer rules of docs/architecture.md, checked on the source.

Every module of the package is parsed with ``ast`` (nothing is imported, so this test is fast and
cannot be fooled by import order). Every ``import``/``from ... import`` counts, at the top of a
file or inside a function: an import moved into a function to dodge a circle is still an edge.
Layers come from the table in docs/architecture.md, so the documentation is the rule.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "minirob"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Edges (importer, imported), names relative to `minirob`, that break a rule and are tolerated
# for now. Empty: issue 15's restructuring removed the last ones (weights <-> model, weights <->
# fairseq, bpe -> tokenizer, commands -> examples). An entry needs a comment saying when it goes.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()

# Modules of the "use" layer must not reach the training loop, directly or through others.
NO_TRAINING_LOOP_FROM = ("predict", "pipelines")
TRAINING_LOOP = "train"
# Edges through which prediction reaches the loop, tolerated for now (predict -> finetune went).
KNOWN_LOOP_PATHS: set[tuple[str, str]] = set()


def layer_table(text: str) -> list[tuple[int, list[str]]]:
    """(layer, module patterns) per row of the table between the ``layers:`` markers."""
    rows, inside = [], False
    for line in text.splitlines():
        if "layers:start" in line:
            inside = True
        elif "layers:end" in line:
            inside = False
        elif inside and (match := re.match(r"^\|\s*(\d+)\s*\|[^|]*\|([^|]*)\|", line)):
            rows.append((int(match.group(1)), re.findall(r"`([^`]+)`", match.group(2))))
    return rows


LAYERS = layer_table(ARCHITECTURE.read_text(encoding="utf-8"))


def layer_of(module: str) -> int | None:
    for layer, patterns in LAYERS:
        if any(fnmatchcase(module, pattern) for pattern in patterns):
            return layer
    return None


def modules() -> dict[str, Path]:
    """Every module of the package by its name relative to `minirob` ('minirob' = __init__)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts) or "minirob"] = path
    return found


def absolute(name: str) -> str | None:
    """'minirob.x.y' -> 'x.y', 'minirob' -> 'minirob', anything else (torch, json) -> None."""
    if name == "minirob":
        return "minirob"
    return name[len("minirob."):] if name.startswith("minirob.") else None


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `module` imports anywhere in its source."""
    package = module.rsplit(".", 1)[0] if "." in module else "minirob"
    if path.name == "__init__.py":
        package = module
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [absolute(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb level-1 packages from this module's package
                base = [] if package == "minirob" else package.split(".")
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                source = ".".join(base + ([node.module] if node.module else [])) or "minirob"
            else:
                source = absolute(node.module or "")
            if source is None:
                continue
            targets = []
            for alias in node.names:  # `from minirob import errors` imports a module
                child = alias.name if source == "minirob" else f"{source}.{alias.name}"
                if child in known:
                    targets.append(child)
                elif not (source == "minirob" and alias.name == "__version__"):
                    targets.append(source)  # rule 6: the version string is not a dependency
        else:
            continue
        found.update(t for t in targets if t is not None and t != module)
    return found


MODULES = modules()
GRAPH = {name: imports_of(name, path, set(MODULES)) for name, path in MODULES.items()}


def test_the_layer_table_parses():
    assert len(LAYERS) >= 8, f"{ARCHITECTURE}: the layer table between the markers is missing"
    assert [layer for layer, _ in LAYERS] == sorted(layer for layer, _ in LAYERS)


def test_the_layer_table_names_only_real_modules():
    named = {pattern for _, patterns in LAYERS for pattern in patterns if "*" not in pattern}
    gone = sorted(named - set(MODULES))
    assert not gone, "docs/architecture.md's layer table names missing modules: " + ", ".join(gone)


def test_every_module_has_a_layer():
    missing = [name for name in MODULES if layer_of(name) is None]
    assert not missing, ("modules in no layer (add them to the table in docs/architecture.md): "
                         + ", ".join(missing))


def downward_edges(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Edges from a module to one in a lower layer of the table (a higher number)."""
    return {(a, b) for a, targets in graph.items() for b in targets
            if layer_of(a) is not None and layer_of(b) is not None and layer_of(b) > layer_of(a)}


def test_imports_point_up_the_layers():
    bad = sorted(downward_edges(GRAPH) - KNOWN_VIOLATIONS)
    assert not bad, "imports that point down the layers:\n" + "\n".join(
        f"  minirob.{a} (layer {layer_of(a)}) imports minirob.{b} (layer {layer_of(b)})"
        for a, b in bad)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def without(graph: dict[str, set[str]], edges: set[tuple[str, str]]) -> dict[str, set[str]]:
    return {a: {b for b in targets if (a, b) not in edges} for a, targets in graph.items()}


def test_no_import_circles():
    cycle = find_cycle(without(GRAPH, KNOWN_VIOLATIONS))
    assert cycle is None, "import circle: " + " -> ".join(f"minirob.{m}" for m in cycle)


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A path of imports from start to goal, or None."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        for target in sorted(graph.get(path[-1], ())):
            if target == goal:
                return path + [target]
            if target not in seen:
                seen.add(target)
                paths.append(path + [target])
    return None


@pytest.mark.parametrize("user", NO_TRAINING_LOOP_FROM)
def test_prediction_does_not_load_the_training_loop(user):
    if user not in MODULES:
        pytest.skip(f"minirob.{user} does not exist (yet)")
    path = reaches(without(GRAPH, KNOWN_LOOP_PATHS), user, TRAINING_LOOP)
    assert path is None, "prediction reaches the training loop: " + " -> ".join(path)


def test_known_violations_are_still_real():
    """An entry the code no longer needs must leave the set, so the set can only shrink.

    A known violation is still real while its edge exists and still points down the layers or
    closes a circle; a known loop path while its edge exists and still leads to the loop.
    """
    downward = downward_edges(GRAPH)
    stale = {(a, b) for a, b in KNOWN_VIOLATIONS if b not in GRAPH.get(a, ())
             or ((a, b) not in downward and reaches(GRAPH, b, a) is None)}
    stale |= {(a, b) for a, b in KNOWN_LOOP_PATHS if b not in GRAPH.get(a, ())
              or (b != TRAINING_LOOP and reaches(GRAPH, b, TRAINING_LOOP) is None)}
    assert not stale, "fixed, remove from KNOWN_VIOLATIONS / KNOWN_LOOP_PATHS: " + ", ".join(
        f"{a} -> {b}" for a, b in sorted(stale))


# The checks themselves must be able to fail: run them on small made-up graphs.

def test_a_downward_edge_is_found():
    assert downward_edges({"config": {"model"}, "model": {"config"}}) == {("config", "model")}


def test_a_circle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_inside_functions_count(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from .weights import load\n    import minirob.model\n"
                      "from minirob import __version__, errors\nimport torch\n")
    assert imports_of("encoder", source, {"weights", "model", "errors"}) == {
        "weights", "model", "errors"}


def test_the_concept_table_names_real_modules():
    """docs/architecture.md's "where each concept lives" must not send a reader to a lost file."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## Where each concept lives", 1)[1].split("\n## ", 1)[0]
    named = {name for row in section.splitlines() if row.startswith("|")
             for name in re.findall(r"`([a-z_]+)`", row.rsplit("|", 2)[-2])}
    assert len(named) > 10, "the concept table was not found or not parsed"
    missing = sorted(named - set(MODULES))
    assert not missing, "docs/architecture.md names modules that do not exist: " + ", ".join(missing)
