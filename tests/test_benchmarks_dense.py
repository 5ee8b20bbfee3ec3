"""The dense and compiled benchmark sections run end to end on toy shapes (not a measurement)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ lives at the repo root

pytest.importorskip("transformers", reason="the benchmarks compare against transformers (dev extra)")

from benchmarks import run  # noqa: E402


def toy_run(tmp_path, section, *extra):
    run.main(["--toy", "--quiet", "--only", section, "--precisions", "float32", "--repeats", "2",
              "--warmup", "0", "--threads", "1", "--out", str(tmp_path), *extra])
    return json.loads((tmp_path / "results.json").read_text())["cpu, 1 torch threads"]


def test_dense_section_times_every_task_and_writes_its_rows(tmp_path):
    rows = toy_run(tmp_path, "dense", "--section-note", "dense=Shared machine.")["dense"]
    assert [row["case"]["task"] for row in rows] == ["mlm", "tagging", "mlm forward"]
    assert all(len(row["minirob_s"]) == len(row["transformers_s"]) == 2 for row in rows)
    assert rows[0]["summary"]["classes"] == run.TOY["vocab_size"] and rows[1]["summary"]["classes"] == 9
    table = (tmp_path / "results.md").read_text()
    assert "| dense tagging (fwd+bwd, all-position logits), small, 8x64, float32 |" in table
    # its own heading, its note under it, and no empty table for the sections not run
    assert "### Dense path: logits at every position, forward + backward, no optimiser\n\n" \
           "Shared machine.\n" in table
    assert "### Speed" not in table


def test_rows_of_different_tasks_are_different_rows():
    # A rerun replaces the rows with the same key: two tasks of one shape must not collide, and
    # rows written before tasks existed keep their old identity.
    mlm, tagging = ({"case": {"bench": "dense", "task": t, "batch": 8, "length": 64,
                              "precision": "float32"}} for t in ("mlm", "tagging"))
    assert run.case_key(mlm) != run.case_key(tagging)
    old = {"case": {"bench": "pretrain", "batch": 32, "length": 128, "precision": "float32"}}
    assert run.merge([old], [mlm, tagging])[0] is old


@pytest.mark.slow
def test_compiled_section_reports_compile_time_apart(tmp_path):
    rows = toy_run(tmp_path, "compiled")["compiled"]
    assert [row["case"]["task"] for row in rows] == ["pretrain", "dense mlm"]
    assert all(row["first_pass_s"]["compiled"] > 0 and len(row["compiled_s"]) == 2 for row in rows)
    assert "Compiled step" in (tmp_path / "results.md").read_text()
