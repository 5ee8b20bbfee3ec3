"""Build the tutorial notebooks from their readable sources, run them, and store the outputs.

Each chapter is written as a plain Python file in ``tutorials/src/`` in the "percent" format
(the format jupytext and VS Code understand): ``# %%`` starts a code cell, ``# %% [markdown]``
starts a prose cell whose lines are Markdown behind ``# ``. The source is what you review and
diff; the ``.ipynb`` next to it is generated, executed top to bottom in a real Jupyter kernel,
and committed with its outputs so the plots show on the repository page.

    .venv/bin/python tutorials/build.py                 # rebuild and run all chapters (default budgets)
    .venv/bin/python tutorials/build.py 03 05           # only chapters whose name starts with 03, 05
    .venv/bin/python tutorials/build.py --fast --out /tmp/nb   # shrunk budgets (what CI runs)
    .venv/bin/python tutorials/build.py --check         # are the committed outputs up to date?
    .venv/bin/python tutorials/build.py --prose 04      # text edits only: keep the outputs
    .venv/bin/python tutorials/build.py --fast --solutions --out /tmp/nb 01   # answers swapped in

Exercises (see ``tutorials/checks.py``): a code cell whose first line is ``# exercise: <name>``
holds a stub that raises ``NotImplementedError``; its answer is the section ``# %% solution:
<name>`` of ``tutorials/solutions/<chapter>.py``. ``--solutions`` runs the chapter with the answers
in place (what CI does); committed notebooks hold the stubs.

Quoted numbers: ``{{name}}`` in a Markdown cell is replaced by the value a code cell showed with
``checks.quote("name", value, spec)`` in the same run (``--prose`` fills it from the committed
outputs), so prose cannot state a number the outputs do not show.

Every notebook records, in ``metadata.minirob``, the sha256 of the code cells it was executed
from, the sha256 of the ``minirob/`` sources it imported, the versions of torch, transformers and
tokenizers, the budget it ran with and how long it took; ``tests/test_tutorials.py`` uses these to
prove the committed outputs are not stale.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
SOLUTIONS = HERE / "solutions"
LIBRARY = HERE.parent / "minirob"
FAST_ENV = "MINIROB_TUTORIAL_FAST"  # "1": every chapter shrinks its budgets to seconds
SOLUTIONS_ENV = "MINIROB_TUTORIAL_SOLUTIONS"  # "1": answers swapped in (same name as checks.py)
QUOTE_MIME = "application/vnd.minirob.quote+json"  # what checks.quote displays
DEPENDENCIES = ("torch", "transformers", "tokenizers")  # whose versions the outputs depend on
KERNEL_NAME = "minirob"  # a kernel spec pinned to this interpreter (see ensure_kernel)

_CODE = "# %%"
_MARKDOWN = "# %% [markdown]"


# --------------------------------------------------------------------------- source -> cells
def code_sha256(cells: list) -> str:
    """Fingerprint of the code a notebook runs: its code cells, in order. Outputs depend on these
    alone, so prose can be edited without re-running (``--prose``) and the notebook stays fresh."""
    code = "\n# %%\n".join(c.source for c in cells if c.cell_type == "code")
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def _markdown_line(line: str, where: str) -> str:
    """'# text' -> 'text'; a bare '#' is a blank line. Anything else is a formatting mistake."""
    if line == "#":
        return ""
    if line.startswith("# "):
        return line[2:]
    raise ValueError(f"{where}: a markdown cell line must start with '# ' (got {line!r})")


def parse_percent(text: str, name: str = "<source>") -> list[nbformat.NotebookNode]:
    """Split a percent-format source into notebook cells (text before the first marker is dropped:
    it is the file's module docstring / header, for readers of the .py only)."""
    cells: list[nbformat.NotebookNode] = []
    kind, lines, start = None, [], 0

    def flush() -> None:
        if kind is None:
            return
        body = lines[:]
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        if kind == "markdown":
            body = [_markdown_line(x, f"{name}:{start + i + 2}") for i, x in enumerate(body)]
            cells.append(nbformat.v4.new_markdown_cell("\n".join(body)))
        else:
            cells.append(nbformat.v4.new_code_cell("\n".join(body)))

    for number, line in enumerate(text.splitlines()):
        stripped = line.rstrip()
        if stripped in (_CODE, _MARKDOWN):
            flush()
            kind = "markdown" if stripped == _MARKDOWN else "code"
            lines, start = [], number
        elif stripped.startswith(_CODE):
            raise ValueError(f"{name}:{number + 1}: unknown cell marker {stripped!r}")
        else:
            lines.append(stripped)
    flush()
    for cell in cells:  # stable ids keep regenerated notebooks diff-friendly
        cell.pop("id", None)
    return cells


def notebook_from_source(path: Path, solutions: bool = False) -> nbformat.NotebookNode:
    """The chapter's cells, unexecuted; with ``solutions`` every exercise stub replaced by its answer."""
    text = path.read_text(encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.cells = parse_percent(text, path.name)
    names = exercises(nb.cells, path.name)
    if solutions:
        answers = load_solutions(path.stem)
        if set(answers) != set(names.values()):
            raise ValueError(
                f"{path.name}: exercises {sorted(names.values())} but solutions/{path.stem}.py answers {sorted(answers)}"
            )
        for index, name in names.items():
            nb.cells[index].source = f"{_EXERCISE} {name}\n{answers[name]}"
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"{path.stem[:2]}-{index:03d}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["minirob"] = {
        "source": f"src/{path.name}",
        "code_sha256": code_sha256(nb.cells),
        "exercises": sorted(names.values()),
        "solutions": solutions,
    }
    return nb


# --------------------------------------------------------------------------- exercises
_EXERCISE = "# exercise:"
_SOLUTION = "# %% solution:"
_NAME = re.compile(r"[A-Za-z_]\w*")


def exercises(cells: list, where: str = "<source>") -> dict[int, str]:
    """Cell index -> exercise name, for code cells whose first line is ``# exercise: <name>``.

    Each must hold a stub (``raise NotImplementedError``) and a name used once: committed notebooks
    must never carry a solved exercise.
    """
    found: dict[int, str] = {}
    for index, cell in enumerate(cells):
        first = cell.source.split("\n", 1)[0]
        if cell.cell_type != "code" or not first.startswith(_EXERCISE):
            continue
        name = first[len(_EXERCISE):].strip()
        if not _NAME.fullmatch(name) or name in found.values():
            raise ValueError(f"{where}: cell {index}: exercise name {name!r} is not a new identifier")
        if "raise NotImplementedError" not in cell.source:
            raise ValueError(f"{where}: exercise {name!r} (cell {index}) has no `raise NotImplementedError` stub")
        found[index] = name
    return found


def load_solutions(chapter: str) -> dict[str, str]:
    """Exercise name -> answer code, from the ``# %% solution: <name>`` sections of solutions/<chapter>.py."""
    path = SOLUTIONS / f"{chapter}.py"
    if not path.exists():
        return {}
    answers: dict[str, str] = {}
    name, lines = None, []
    for line in path.read_text(encoding="utf-8").splitlines() + [f"{_SOLUTION} <end>"]:
        if line.startswith(_SOLUTION):
            if name is not None:
                answers[name] = "\n".join(lines).strip("\n")
            name, lines = line[len(_SOLUTION):].strip(), []
        elif name is not None:
            lines.append(line.rstrip())
    return answers


# --------------------------------------------------------------------------- quoted numbers
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")


def quotes(nb: nbformat.NotebookNode) -> dict[str, str]:
    """name -> text of every ``checks.quote`` in the executed notebook's outputs (a name once)."""
    found: dict[str, str] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for name, text in output.get("data", {}).get(QUOTE_MIME, {}).items():
                if found.get(name, text) != text:
                    raise ValueError(f"quote {name!r} shown twice with different values ({found[name]!r}, {text!r})")
                found[name] = text
    return found


def fill_prose(cells: list, values: dict[str, str]) -> list[str]:
    """Write the quoted values into every ``{{name}}`` of the Markdown cells (in place); returns the
    names no output quoted (their placeholders are left as they are)."""
    missing: list[str] = []

    def value(match: re.Match) -> str:
        if match.group(1) not in values:
            missing.append(match.group(1))
            return match.group(0)
        return values[match.group(1)]

    for cell in cells:
        if cell.cell_type == "markdown":
            cell.source = _PLACEHOLDER.sub(value, cell.source)
    return missing


# --------------------------------------------------------------------------- what outputs depend on
def library_sha256() -> str:
    """Fingerprint of the minirob/ sources (every .py under it, by relative path and content)."""
    digest = hashlib.sha256()
    for path in sorted(LIBRARY.rglob("*.py")):
        digest.update(path.relative_to(LIBRARY).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def dependency_versions() -> dict[str, str]:
    versions = {}
    for name in DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def chapter_sources(selected: list[str] | None = None) -> list[Path]:
    paths = sorted(SOURCES.glob("[0-9][0-9]_*.py"))
    if selected:
        paths = [p for p in paths if any(p.stem.startswith(s) for s in selected)]
    return paths


# --------------------------------------------------------------------------- freshness
def staleness(
    nb: nbformat.NotebookNode,
    source_text: str,
    library: str | None = None,
    versions: dict[str, str] | None = None,
) -> list[str]:
    """Why a committed notebook does not reflect a full run of its current source ([] = fresh).

    Fresh means: the cells are exactly the source's cells, with every ``{{name}}`` filled from the
    notebook's own quoted outputs; the notebook was executed from the same code cells (the sha256
    recorded at execution time), against the same ``minirob/`` sources (``library``, default: the
    ones on disk) and the same torch, transformers and tokenizers (``versions``, default: those
    installed), with the default budget and the exercise stubs (not the solutions), top to bottom in
    one kernel (execution counts 1, 2, 3, ...), and no cell raised.
    """
    problems = []
    source_cells = parse_percent(source_text)
    missing = fill_prose(source_cells, quotes(nb))
    if missing:
        problems.append(f"the prose quotes {sorted(set(missing))}, which no output of the run shows (checks.quote)")
    want = [(c.cell_type, c.source) for c in source_cells]
    have = [(c.cell_type, c.source) for c in nb.cells]
    if want != have:
        first = next((i for i, (w, h) in enumerate(zip(want, have)) if w != h), min(len(want), len(have)))
        problems.append(f"cells differ from the source (first difference at cell {first})")
    meta = nb.metadata.get("minirob", {})
    if meta.get("code_sha256") != code_sha256(source_cells):
        problems.append("executed from different code cells (code sha256 mismatch)")
    recorded = meta.get("library_sha256")
    if recorded != (library or library_sha256()):
        problems.append(
            "the minirob/ sources changed since the run (library sha256 "
            f"{(recorded or 'unrecorded')[:12]} -> {(library or library_sha256())[:12]})"
        )
    current, ran_with = versions or dependency_versions(), meta.get("versions", {})
    for name in DEPENDENCIES:
        if ran_with.get(name) != current[name]:
            problems.append(f"{name} changed since the run ({ran_with.get(name, 'unrecorded')} -> {current[name]})")
    if meta.get("budget") != "default":
        problems.append(f"outputs come from a {meta.get('budget', 'missing')!r} run, not the default budget")
    if meta.get("solutions"):
        problems.append("outputs come from a run with the solutions swapped in (commit the stubs)")
    counts = [c.get("execution_count") for c in nb.cells if c.cell_type == "code"]
    if counts != list(range(1, len(counts) + 1)):
        problems.append(f"not one top-to-bottom run (execution counts {counts})")
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"cell {index} raised {output.get('ename')}")
    return problems


def rebuild_command(chapter: str) -> str:
    return f".venv/bin/python tutorials/build.py {chapter[:2]}"


# --------------------------------------------------------------------------- kernel
def ensure_kernel() -> str:
    """Register a Jupyter kernel that runs *this* interpreter, and return its name.

    ``ipykernel install --sys-prefix`` writes ``<venv>/share/jupyter/kernels/minirob/kernel.json``
    with the absolute path of this Python, so the notebooks import the minirob installed here and
    not whatever ``python`` is first on PATH. Nothing is written outside the virtualenv.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from minirob.locks import exclusive_lock

    # Parallel test workers in a fresh virtualenv all find no kernel at first; installing replaces
    # the spec's folder, so one worker could look it up while another had it half-copied. The
    # check and the install happen under one lock, one process at a time.
    jupyter = Path(sys.prefix) / "share" / "jupyter"
    jupyter.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(jupyter / ".minirob-kernel.lock", timeout=300):
        try:
            spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
            ready = spec.argv and Path(spec.argv[0]) == Path(sys.executable)
        except NoSuchKernel:
            ready = False
        if not ready:
            from ipykernel.kernelspec import install

            install(kernel_name=KERNEL_NAME, display_name="Python (minirob)", prefix=sys.prefix)
            spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
            if Path(spec.argv[0]) != Path(sys.executable):
                raise RuntimeError(
                    f"kernel spec {KERNEL_NAME!r} in {spec.resource_dir} runs {spec.argv[0]}, not "
                    f"{sys.executable}; it shadows the one in {sys.prefix}: remove it"
                )
    return KERNEL_NAME


# --------------------------------------------------------------------------- execution
def execute(
    nb: nbformat.NotebookNode, fast: bool, timeout: int | None = None
) -> tuple[nbformat.NotebookNode, float]:
    """Run every cell in order in a fresh kernel (cwd = tutorials/), then write the quoted numbers
    into the prose; raise on the first failing cell or on a ``{{name}}`` no output quoted."""
    from nbclient import NotebookClient

    kernel = ensure_kernel()
    library, versions = library_sha256(), dependency_versions()  # what this run imports
    # The kernel inherits our environment: the budget and solutions switches, and a private TMPDIR
    # so whatever the chapter writes to temporary directories (run directories, weights) is removed.
    scratch = tempfile.mkdtemp(prefix="minirob-tutorial-")
    saved = {name: os.environ.get(name) for name in (FAST_ENV, SOLUTIONS_ENV, "TMPDIR")}
    os.environ[FAST_ENV] = "1" if fast else "0"
    os.environ[SOLUTIONS_ENV] = "1" if nb.metadata["minirob"].get("solutions") else "0"
    os.environ["TMPDIR"] = scratch
    try:
        client = NotebookClient(
            nb,
            kernel_name=kernel,
            timeout=timeout or (300 if fast else 1800),
            resources={"metadata": {"path": str(HERE)}},
            record_timing=fast,  # per-cell timestamps help to find slow cells; kept out of commits
        )
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(scratch, ignore_errors=True)
    missing = fill_prose(nb.cells, quotes(nb))
    if missing:
        raise ValueError(f"the prose quotes {sorted(set(missing))}, which no cell showed with checks.quote")
    nb.metadata["minirob"]["library_sha256"] = library
    nb.metadata["minirob"]["versions"] = versions
    nb.metadata["minirob"]["budget"] = "fast" if fast else "default"
    nb.metadata["minirob"]["run_seconds"] = round(seconds, 1)
    # Keep the portable kernel name, so readers can open the notebook with any Python 3 kernel.
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb, seconds


def build(path: Path, out_dir: Path, fast: bool, run: bool = True, solutions: bool = False) -> float:
    nb = notebook_from_source(path, solutions=solutions)
    seconds = 0.0
    if run:
        try:
            nb, seconds = execute(nb, fast)
        except Exception:
            failed = Path(tempfile.gettempdir()) / f"{path.stem}.failed.ipynb"
            nbformat.write(nb, failed)  # the outputs up to the failing cell, for inspection
            print(f"{path.stem}: FAILED; partial notebook in {failed}", file=sys.stderr)
            raise
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / f"{path.stem}.ipynb")
    return seconds


def refresh_prose(path: Path) -> None:
    """Rewrite the prose of an executed notebook from its source, keeping every code output and
    filling ``{{name}}`` from the quotes in those outputs.

    Refused when the code cells differ from the ones executed, or when the new prose quotes a
    name the committed run did not show: then the outputs must be regenerated.
    """
    notebook_path = HERE / f"{path.stem}.ipynb"
    old = nbformat.read(notebook_path, as_version=4)
    new = notebook_from_source(path)
    if new.metadata["minirob"]["code_sha256"] != old.metadata.get("minirob", {}).get("code_sha256"):
        raise SystemExit(f"{path.stem}: the code cells changed since the last run; rebuild it (no --prose)")
    missing = fill_prose(new.cells, quotes(old))
    if missing:
        raise SystemExit(f"{path.stem}: the prose quotes {sorted(set(missing))}, which the committed run "
                         f"does not show; rebuild it ({rebuild_command(path.stem)})")
    old_code = iter(c for c in old.cells if c.cell_type == "code")
    for cell in new.cells:
        if cell.cell_type == "code":
            executed = next(old_code)
            cell.outputs, cell.execution_count = executed.outputs, executed.execution_count
    new.metadata = old.metadata
    nbformat.write(new, notebook_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="name prefixes, e.g. 01 04 (default: all)")
    parser.add_argument("--fast", action="store_true", help=f"shrunk budgets ({FAST_ENV}=1)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: tutorials/)")
    parser.add_argument("--no-run", action="store_true", help="write the notebooks without outputs")
    parser.add_argument("--solutions", action="store_true",
                        help="swap the answers in tutorials/solutions/ into the exercise cells (needs --out)")
    parser.add_argument("--check", action="store_true", help="only report stale committed notebooks")
    parser.add_argument("--prose", action="store_true",
                        help="update the Markdown of committed notebooks without re-running (code unchanged)")
    args = parser.parse_args(argv)
    if args.prose:
        for path in chapter_sources(args.chapters):
            refresh_prose(path)
            print(f"{path.stem}: prose refreshed, outputs kept")
        return 0
    if args.check:
        stale = 0
        for path in chapter_sources(args.chapters):
            notebook = HERE / f"{path.stem}.ipynb"
            problems = (
                staleness(nbformat.read(notebook, as_version=4), path.read_text(encoding="utf-8"))
                if notebook.exists()
                else ["notebook missing"]
            )
            stale += bool(problems)
            hint = f" -> rebuild: {rebuild_command(path.stem)}" if problems else ""
            print(f"{path.stem}: {'; '.join(problems) or 'fresh'}{hint}")
        return 1 if stale else 0
    out = args.out or HERE
    if out.resolve() == HERE and (args.fast or args.no_run or args.solutions):
        parser.error("fast, solved or unexecuted notebooks must not replace the committed ones: pass --out")
    paths = chapter_sources(args.chapters)
    if not paths:
        parser.error(f"no chapter in {SOURCES} matches {args.chapters}")
    for path in paths:
        mode = ("fast" if args.fast else "default") + (" budget, solutions in" if args.solutions else " budget")
        print(f"{path.stem}: running ({mode}) ...", flush=True)
        seconds = build(path, out, fast=args.fast, run=not args.no_run, solutions=args.solutions)
        print(f"{path.stem}: done in {seconds:.1f} s -> {out / (path.stem + '.ipynb')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
