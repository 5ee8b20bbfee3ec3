"""The tutorial notebooks: every chapter runs in a real Jupyter kernel, and what is committed is fresh.

Execution uses the shrunk budgets (MINIROB_TUTORIAL_FAST=1) so all seven run on every CI build;
freshness checks that each committed ``.ipynb`` holds exactly the cells of its source in
``tutorials/src/`` and the outputs of a full, default-budget run of that very source (see
``tutorials/build.py``: ``staleness``).
"""

from __future__ import annotations

import importlib.util
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


def _load_build():
    """tutorials/ is not a package: import its build script by path."""
    spec = importlib.util.spec_from_file_location("minirob_tutorials_build", TUTORIALS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()


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
    nb = nbformat.read(TUTORIALS / f"{name}.ipynb", as_version=4)
    problems = build.staleness(nb, _source(name))
    assert not problems, f"{name}.ipynb is stale: {problems}; rerun `.venv/bin/python tutorials/build.py {name[:2]}`"
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{name}.ipynb has no plot output"


def test_staleness_detects_an_edit_and_a_fast_run():
    name = CHAPTERS[0]
    nb = nbformat.read(TUTORIALS / f"{name}.ipynb", as_version=4)
    assert build.staleness(nb, _source(name)) == []
    edited = _source(name).replace("torch.manual_seed(0)", "torch.manual_seed(1)", 1)
    assert any("cells differ" in p for p in build.staleness(nb, edited))
    assert any("code sha256" in p for p in build.staleness(nb, edited))
    # A prose edit makes the cells differ too, but the outputs still come from the same code.
    prose = _source(name).replace("# # Chapter 1", "# # Chapter One", 1)
    assert [p for p in build.staleness(nb, prose) if "sha256" in p] == []
    assert any("cells differ" in p for p in build.staleness(nb, prose))
    nb.metadata["minirob"]["budget"] = "fast"
    assert any("'fast' run" in p for p in build.staleness(nb, _source(name)))
    nb.cells[3]["execution_count"] = 99
    assert any("top-to-bottom" in p for p in build.staleness(nb, _source(name)))


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_runs_in_a_jupyter_kernel(name, monkeypatch):
    """Execute the chapter top to bottom (fast budgets); nbclient raises on the first failing cell."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel shares 2 cores with another xdist worker
    nb = build.notebook_from_source(TUTORIALS / "src" / f"{name}.py")
    nb, seconds = build.execute(nb, fast=True, timeout=600)  # per cell; generous for a loaded CI box
    assert nb.metadata["minirob"]["budget"] == "fast"
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors  # nbclient raises first; this guards against cells allowed to fail
    print(f"{name}: executed in {seconds:.1f} s (fast budgets)")
