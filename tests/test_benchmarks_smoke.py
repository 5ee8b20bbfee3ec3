"""The benchmark harness runs end to end on toy shapes and writes its table (not a measurement).

The real benchmarks take many minutes and are kept out of the suite (``python -m benchmarks.run``);
this only proves the command still works: both twins build with the same weights (the run checks
that they compute the same function), every pair is timed, the utilisation and one peak-memory
measurement (in-process here) complete, and results.md / results.json come out.
"""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ lives at the repo root

pytest.importorskip("transformers", reason="the benchmarks compare against transformers (dev extra)")

from benchmarks import memory, run  # noqa: E402
from benchmarks.harness import Comparison  # noqa: E402


def test_toy_run_writes_the_table(tmp_path):
    run.main(["--toy", "--quiet", "--only", "pretrain,utilisation", "--precisions", "float32",
              "--repeats", "2", "--warmup", "0", "--threads", "1", "--out", str(tmp_path)])
    results = json.loads((tmp_path / "results.json").read_text())["cpu, 1 torch threads"]
    (pretrain,) = results["pretrain"]
    assert len(pretrain["minirob_s"]) == len(pretrain["transformers_s"]) == 2
    assert pretrain["summary"]["masked_positions"] > 0
    # predict_at: minirob's step does fewer FLOPs than transformers' full-vocabulary logits.
    assert pretrain["summary"]["minirob_flops"] < pretrain["summary"]["transformers_flops"]
    table = (tmp_path / "results.md").read_text()
    assert "| pretrain step (fwd+bwd+AdamW), small, 8x64, float32 |" in table
    assert "Toy shapes" in table and "Utilisation" in table


def test_memory_child_measures_a_toy_step():
    # What each memory subprocess runs, here in-process (a subprocess per side is the slow part).
    spec = {"bench": "pretrain", "preset": "small", "overrides": run.TOY, "batch": 8, "length": 64,
            "precision": "float32", "device": "cpu", "threads": 1, "steps": 2}
    for impl in ("minirob", "transformers"):
        result = memory.measure({**spec, "impl": impl})
        assert result["peak_mb"] > 0 and result["increase_mb"] >= 0


def test_ratio_summary_by_hand():
    # minirob 1 s and 2 s per step, transformers 3 s and 3 s: ratios 3.0 and 1.5.
    c = Comparison(name="x", unit="tokens/s", work=10, minirob_s=[1.0, 2.0],
                   transformers_s=[3.0, 3.0])
    s = c.summary()
    assert (s["ratio_min"], s["ratio_median"], s["ratio_max"]) == (1.5, 2.25, 3.0)
    assert s["minirob_per_s"] == pytest.approx(10 / 1.5)
    assert s["transformers_per_s"] == pytest.approx(10 / 3.0)
