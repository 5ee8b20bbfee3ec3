"""The tutorial notebooks: every chapter runs in a real Jupyter kernel, and what is committed is fresh.

Execution uses the shrunk budgets (MINIROB_TUTORIAL_FAST=1) with the exercise answers of
``tutorials/solutions/`` swapped in, so all seven run on every CI build and every answer passes its
own check; freshness checks that each committed ``.ipynb`` holds exactly the cells of its source in
``tutorials/src/`` (stubs, not answers) and the outputs of a full, default-budget run of that very
source against the current ``minirob/`` sources and dependency versions (see ``tutorials/build.py``:
``staleness``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
CHAPTERS = [
    "01_attention",
    "02_encoder_block",
    "03_bpe",
    "04_pretraining",
    "05_real_weights",
    "06_sentiment",
    "07_ner",
]


# Every chapter's exercises are stubs with answers in tutorials/solutions/ (issue 16: two to four
# per chapter).
WITH_EXERCISES = CHAPTERS
FEWER_EXERCISES: dict[str, int] = {}


def _load(name: str):
    """tutorials/ is not a package: import its scripts by path."""
    spec = importlib.util.spec_from_file_location(f"minirob_tutorials_{name}", TUTORIALS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and friends look their module up by name
    spec.loader.exec_module(module)
    return module


build = _load("build")
checks = _load("checks")


def _source(name: str) -> str:
    return (TUTORIALS / "src" / f"{name}.py").read_text(encoding="utf-8")


def test_the_seven_chapters_are_there():
    assert [p.stem for p in build.chapter_sources()] == CHAPTERS
    missing = [n for n in CHAPTERS if not (TUTORIALS / f"{n}.ipynb").exists()]
    assert not missing, f"notebooks not generated: {missing} (run tutorials/build.py)"


def test_percent_format_parses_into_cells():
    text = "# header, dropped\n# %% [markdown]\n# # Title\n#\n# Some *prose*.\n\n# %%\nx = 1\n\nprint(x)\n\n"
    cells = build.parse_percent(text)
    assert [(c.cell_type, c.source) for c in cells] == [
        ("markdown", "# Title\n\nSome *prose*."),
        ("code", "x = 1\n\nprint(x)"),
    ]
    with pytest.raises(ValueError, match="must start with '# '"):
        build.parse_percent("# %% [markdown]\nnot a comment\n")


@pytest.mark.parametrize("name", CHAPTERS)
def test_committed_notebook_is_fresh(name):
    """Fails whenever the chapter's code, the minirob/ sources or torch/transformers/tokenizers
    changed since the committed run: all notebooks go stale together when the library changes, and
    one command rebuilds them (the message says which input changed)."""
    nb = nbformat.read(TUTORIALS / f"{name}.ipynb", as_version=4)
    problems = build.staleness(nb, _source(name))
    assert not problems, f"{name}.ipynb is stale: {'; '.join(problems)}; rerun `{build.rebuild_command(name)}`"
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{name}.ipynb has no plot output"


def _recorded(nb):
    """The library hash and versions the notebook ran with: freshness of everything but those."""
    meta = nb.metadata.get("minirob", {})
    return {"library": meta.get("library_sha256", "unrecorded"), "versions": meta.get("versions") or
            {n: "unrecorded" for n in build.DEPENDENCIES}}


def test_staleness_detects_an_edit_a_fast_run_and_a_library_change():
    name = CHAPTERS[0]
    nb = nbformat.read(TUTORIALS / f"{name}.ipynb", as_version=4)
    same = _recorded(nb)
    assert build.staleness(nb, _source(name), **same) == []
    edited = _source(name).replace("torch.manual_seed(0)", "torch.manual_seed(1)", 1)
    assert any("cells differ" in p for p in build.staleness(nb, edited, **same))
    assert any("code sha256" in p for p in build.staleness(nb, edited, **same))
    # A prose edit makes the cells differ too, but the outputs still come from the same code.
    prose = _source(name).replace("# # Chapter 1", "# # Chapter One", 1)
    assert [p for p in build.staleness(nb, prose, **same) if "sha256" in p] == []
    assert any("cells differ" in p for p in build.staleness(nb, prose, **same))
    # The library or a dependency changed: name the input.
    assert any("minirob/ sources changed" in p for p in build.staleness(nb, _source(name), "0" * 64, same["versions"]))
    newer = {**same["versions"], "tokenizers": "99.0"}
    assert [p for p in build.staleness(nb, _source(name), same["library"], newer)] == [
        f"tokenizers changed since the run ({same['versions']['tokenizers']} -> 99.0)"
    ]
    nb.metadata["minirob"]["budget"] = "fast"
    assert any("'fast' run" in p for p in build.staleness(nb, _source(name), **same))
    nb.metadata["minirob"]["solutions"] = True
    assert any("solutions swapped in" in p for p in build.staleness(nb, _source(name), **same))
    nb.cells[3]["execution_count"] = 99
    assert any("top-to-bottom" in p for p in build.staleness(nb, _source(name), **same))


def test_library_fingerprint_covers_every_minirob_source(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    monkeypatch.setattr(build, "LIBRARY", tmp_path)
    before = build.library_sha256()
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert build.library_sha256() != before
    assert set(build.dependency_versions()) == {"torch", "transformers", "tokenizers"}


# --------------------------------------------------------------------------- quoted numbers
def _executed(markdown: str, quoted: dict) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("quote(...)")
    code.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "q", build.QUOTE_MIME: quoted})]
    nb.cells = [code, nbformat.v4.new_markdown_cell(markdown)]
    return nb


def test_prose_placeholders_are_filled_from_the_run_and_cannot_drift():
    nb = _executed("accuracy {{accuracy}} after {{ steps }} steps", {"accuracy": "28.6%", "steps": "1,200"})
    assert build.quotes(nb) == {"accuracy": "28.6%", "steps": "1,200"}
    cells = [nbformat.v4.new_markdown_cell("accuracy {{accuracy}}, {{steps}}, {{loss}}")]
    assert build.fill_prose(cells, build.quotes(nb)) == ["loss"]
    assert cells[0].source == "accuracy 28.6%, 1,200, {{loss}}"
    # A committed notebook whose text was edited by hand no longer matches its source + quotes.
    source = "# %%\nquote(...)\n# %% [markdown]\n# accuracy {{accuracy}}\n"
    nb = _executed("accuracy 28.6%", {"accuracy": "28.6%"})
    assert not [p for p in build.staleness(nb, source, "x", {}) if "cells differ" in p or "prose" in p]
    nb.cells[1].source = "accuracy 31.0%"
    assert any("cells differ" in p for p in build.staleness(nb, source, "x", {}))
    # Prose that quotes a name the run never showed is stale, and the build refuses it.
    nb = _executed("accuracy 28.6%", {"other": "1"})
    assert any("['accuracy']" in p for p in build.staleness(nb, source, "x", {}))
    twice = _executed("", {"a": "1"})
    twice.cells.append(_executed("", {"a": "2"}).cells[0])
    with pytest.raises(ValueError, match="different values"):
        build.quotes(twice)


def test_prose_refresh_fills_quotes_from_the_committed_run_and_refuses_new_ones(tmp_path, monkeypatch):
    name = CHAPTERS[0]
    (tmp_path / "src").mkdir()
    (tmp_path / f"{name}.ipynb").write_bytes((TUTORIALS / f"{name}.ipynb").read_bytes())
    monkeypatch.setattr(build, "HERE", tmp_path)
    source = tmp_path / "src" / f"{name}.py"
    # A reworded sentence around a quoted number: the number still comes from the committed outputs.
    source.write_text(_source(name).replace("# Read the first row:", "# Look at the first row:", 1), encoding="utf-8")
    build.refresh_prose(source)
    nb = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
    text = next(c.source for c in nb.cells if c.source.startswith("Look at the first row"))
    assert build.quotes(nb)["score_00"] in text and "{{" not in text
    # A placeholder the committed run never showed cannot be filled without running the chapter.
    source.write_text(_source(name).replace("# Read the first row:", "# Read {{new_number}} rows:", 1), encoding="utf-8")
    with pytest.raises(SystemExit, match="new_number"):
        build.refresh_prose(source)


# --------------------------------------------------------------------------- exercises
def test_check_says_not_attempted_wrong_or_correct(capsys, monkeypatch):
    import torch

    monkeypatch.delenv(checks.SOLUTIONS_ENV, raising=False)

    def stub(x):
        raise NotImplementedError

    cases = [("the batch [1, 2]", (torch.tensor([1, 2]),), torch.tensor([2, 4]))]
    assert checks.check("double", stub, cases) is False
    assert "double: not attempted yet" in capsys.readouterr().out
    with pytest.raises(AssertionError) as wrong:
        checks.check("double", lambda x: x + 1, cases)
    message = str(wrong.value)
    assert "double is wrong on the batch [1, 2]" in message and "expected 4, got 3" in message
    with pytest.raises(AssertionError, match=r"expected shape \(2,\), got shape \(1,\)"):
        checks.check("double", lambda x: x[:1] * 2, cases)
    with pytest.raises(AssertionError, match="failed on the batch .*TypeError"):
        checks.check("double", lambda x: x + "a", cases)
    assert checks.check("double", lambda x: x * 2, cases) is True
    assert "double: correct on all 1 inputs" in capsys.readouterr().out
    monkeypatch.setenv(checks.SOLUTIONS_ENV, "1")  # in CI the answers are in: a stub is a failure
    with pytest.raises(AssertionError, match="stub is still there"):
        checks.check("double", stub, cases)


def test_difference_names_the_place():
    import torch

    assert checks.difference([1, (2, 3)], [1, (2, 4)]) == "at item 1: at item 1: expected 3, got 4"
    assert checks.difference({"a": 1.0}, {"a": 1.0 + 1e-9}) is None
    assert "expected dtype torch.float32" in checks.difference(torch.zeros(2), torch.zeros(2, dtype=torch.long))
    assert "1 of 4 entries differ; first at index [1, 0]" in checks.difference(
        torch.eye(2), torch.tensor([[1.0, 0.0], [0.5, 1.0]]))


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_exercise_has_an_answer_and_a_stub(name):
    cells = build.parse_percent(_source(name))
    found = build.exercises(cells, name)
    assert set(build.load_solutions(name)) == set(found.values())
    least = FEWER_EXERCISES.get(name, 2)
    assert least <= len(found) <= 4, f"{name}: {len(found)} exercises"
    solved = build.notebook_from_source(TUTORIALS / "src" / f"{name}.py", solutions=True)
    for index in found:
        assert "raise NotImplementedError" not in solved.cells[index].source


@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_committed_notebook_holds_no_solved_exercise(name):
    nb = nbformat.read(TUTORIALS / f"{name}.ipynb", as_version=4)
    found = build.exercises(nb.cells, f"{name}.ipynb")
    assert sorted(found.values()) == nb.metadata["minirob"]["exercises"] and found
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    for index, exercise in found.items():
        assert "raise NotImplementedError" in nb.cells[index].source
        assert f"{exercise}: {checks.NOT_ATTEMPTED}" in printed, f"{exercise}'s check did not meet the stub"


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_runs_in_a_jupyter_kernel(name, monkeypatch):
    """Execute the chapter top to bottom (fast budgets, the answers swapped in); nbclient raises on
    the first failing cell, so a wrong answer fails here with its check's message."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel shares 2 cores with another xdist worker
    nb = build.notebook_from_source(TUTORIALS / "src" / f"{name}.py", solutions=True)
    nb, seconds = build.execute(nb, fast=True, timeout=600)  # per cell; generous for a loaded CI box
    assert nb.metadata["minirob"]["budget"] == "fast"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors  # nbclient raises first; this guards against cells allowed to fail
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    for exercise in nb.metadata["minirob"]["exercises"]:
        assert f"{exercise}: correct on all" in printed, f"{exercise}'s check did not pass"
    print(f"{name}: executed in {seconds:.1f} s (fast budgets, solutions in)")
