"""Check README's "Read the code in this order" table against the files it names.

The table quotes a line count for every file. Code moves; a tour that sends a student to a file
that is gone, or calls a 700-line file short, is worse than none. This script reads the rows
between the ``code-tour:start`` and ``code-tour:end`` markers and fails, naming the row, if a file
does not exist or its real line count is more than 10% away from the quoted one.

    python scripts/code_tour.py            # exit 0: the table is current; 1: it lists what is stale
    python scripts/code_tour.py --update   # rewrite the quoted counts from the files (not the rows)

tests/test_docs.py runs it as part of the suite.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.10  # relative difference allowed between quoted and real line counts

# A table row: | 3 | `minirob/embeddings.py` | 62 | what it teaches |
ROW = re.compile(r"^\|\s*\d+\s*\|\s*`([^`]+)`\s*\|\s*([\d,]+)\s*\|")
COUNT = re.compile(r"^(\|\s*\d+\s*\|\s*`[^`]+`\s*\|\s*)[\d,]+")  # the lines column


def tour_rows(readme: str) -> list[tuple[int, str, int]]:
    """(README line number, path, quoted line count) for each row between the markers."""
    rows, inside = [], False
    for number, line in enumerate(readme.splitlines(), start=1):
        if "code-tour:start" in line:
            inside = True
        elif "code-tour:end" in line:
            inside = False
        elif inside and (match := ROW.match(line)):
            rows.append((number, match.group(1), int(match.group(2).replace(",", ""))))
    return rows


def problems(root: Path = ROOT) -> list[str]:
    """One message per stale row; an empty list means the table is current."""
    readme = root / "README.md"
    rows = tour_rows(readme.read_text(encoding="utf-8"))
    if not rows:
        return [f"{readme}: no code-tour rows found between the code-tour markers"]
    found = []
    for number, path, quoted in rows:
        file = root / path
        if not file.is_file():
            found.append(f"README.md:{number}: {path} does not exist")
            continue
        real = len(file.read_text(encoding="utf-8").splitlines())
        if abs(real - quoted) > TOLERANCE * real:
            found.append(f"README.md:{number}: {path} has {real} lines, the table says {quoted}")
    return found


def update_counts(root: Path = ROOT) -> None:
    """Rewrite each row's quoted line count with the file's real one; rows stay as written."""
    readme = root / "README.md"
    lines = readme.read_text(encoding="utf-8").split("\n")
    for number, path, quoted in tour_rows("\n".join(lines)):
        if (root / path).is_file():
            real = len((root / path).read_text(encoding="utf-8").splitlines())
            lines[number - 1] = COUNT.sub(rf"\g<1>{real}", lines[number - 1], count=1)
    readme.write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    if "--update" in sys.argv[1:]:
        update_counts()
    found = problems()
    for message in found:
        print(message)
    if not found:
        print(f"code tour current: {len(tour_rows((ROOT / 'README.md').read_text()))} files")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
