"""Helpers the tutorial notebooks import: exercise checks and numbers quoted in the prose.

The notebooks run with ``tutorials/`` as their working directory, so ``import checks`` finds this
file (in Jupyter as in ``tutorials/build.py``). It is teaching scaffolding, not part of minirob.

**Exercises.** An exercise is a code cell whose first line is ``# exercise: <name>`` and whose
body is a stub that raises ``NotImplementedError``; the code cell after it calls :func:`check`
with the student's function and a few inputs whose expected answers come from the library.
``check`` then says one of three things:

* the stub is still there: "<name>: not attempted yet", and the notebook carries on;
* the answer is wrong: an ``AssertionError`` naming the input, the expected and the actual value;
* the answer is right: "<name>: correct on N inputs".

``tutorials/build.py --solutions`` swaps the answers in ``tutorials/solutions/`` into the exercise
cells (and sets ``MINIROB_TUTORIAL_SOLUTIONS=1``, under which a stub is an error too), so CI proves
every solution with its own check.

**Quoted numbers.** ``quote("name", value, ".1%")`` shows the formatted value under the cell and
tags it; the build writes it into every ``{{name}}`` of the chapter's Markdown, so prose can only
state the number the run printed.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

SOLUTIONS_ENV = "MINIROB_TUTORIAL_SOLUTIONS"  # "1": the answers are swapped in; a stub is a failure
QUOTE_MIME = "application/vnd.minirob.quote+json"  # the output type build.py reads quotes from
NOT_ATTEMPTED = "not attempted yet"


# --------------------------------------------------------------------------- comparing answers
def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...)"


def difference(expected: Any, got: Any, atol: float = 1e-5, rtol: float = 1e-4) -> str | None:
    """None when ``got`` matches ``expected``, else one sentence saying what differs and where.

    Tensors: same shape, same kind (integer or floating), integers exactly, floats to within
    ``atol + rtol * |expected|``. Sequences and dicts are compared item by item; numbers like
    tensors of one element.
    """
    import torch  # the checks also compare plain Python values; torch is there in every chapter

    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a tensor of shape {tuple(expected.shape)}, got {type(got).__name__} {_short(got)}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
        if expected.is_floating_point() != got.is_floating_point():
            return f"expected dtype {expected.dtype}, got {got.dtype}"
        e, g = expected.detach().cpu(), got.detach().cpu().to(expected.dtype)
        if e.is_floating_point():
            bad = ~torch.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)
        else:
            bad = g != e
        if not bad.any():
            return None
        first = tuple(int(i) for i in bad.nonzero()[0])
        where = f"at index {list(first)}" if first else "in its value"
        text = f"{int(bad.sum())} of {e.numel()} entries differ; first {where}: expected {e[first].item()!r}, got {g[first].item()!r}"
        if e.numel() <= 40:
            text += f"\n  expected {e.tolist()}\n  got      {g.tolist()}"
        return text
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected a dict, got {type(got).__name__} {_short(got)}"
        if set(got) != set(expected):
            missing, extra = set(expected) - set(got), set(got) - set(expected)
            return f"keys differ: missing {sorted(map(repr, missing))}, unexpected {sorted(map(repr, extra))}"
        for key in expected:
            problem = difference(expected[key], got[key], atol, rtol)
            if problem:
                return f"at key {key!r}: {problem}"
        return None
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"expected a {type(expected).__name__} of {len(expected)} items, got {type(got).__name__} {_short(got)}"
        if len(got) != len(expected):
            return f"expected {len(expected)} items {_short(expected)}, got {len(got)} items {_short(got)}"
        for index, (e_item, g_item) in enumerate(zip(expected, got)):
            problem = difference(e_item, g_item, atol, rtol)
            if problem:
                return f"at item {index}: {problem}"
        return None
    if isinstance(expected, float):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"expected the number {expected!r}, got {type(got).__name__} {_short(got)}"
        return None if abs(got - expected) <= atol + rtol * abs(expected) else f"expected {expected!r}, got {got!r}"
    return None if got == expected else f"expected {_short(expected)}, got {_short(got)}"


# --------------------------------------------------------------------------- the check
def check(
    name: str,
    attempt: Callable[..., Any],
    cases: Sequence[tuple[str, tuple, Any]],
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> bool:
    """Run ``attempt(*args)`` on every ``(label, args, expected)`` case; True when all match.

    Returns False (and prints "not attempted yet") while the stub is in place, so the rest of the
    chapter still runs; raises ``AssertionError`` saying which input gave what when it is wrong.
    """
    for label, args, expected in cases:
        try:
            got = attempt(*args)
        except NotImplementedError:
            if os.environ.get(SOLUTIONS_ENV) == "1":
                raise AssertionError(f"{name}: the stub is still there in a --solutions run") from None
            print(f"{name}: {NOT_ATTEMPTED} (replace the `raise NotImplementedError` in the cell above, then run this cell again)")
            return False
        except Exception as error:
            raise AssertionError(f"{name} failed on {label}: {type(error).__name__}: {error}") from error
        problem = difference(expected, got, atol, rtol)
        if problem:
            raise AssertionError(f"{name} is wrong on {label}: {problem}")
    labels = [label for label, _, _ in cases]
    listed = "; ".join(labels[:3]) + (f"; and {len(labels) - 3} more" if len(labels) > 3 else "")
    print(f"{name}: correct on all {len(cases)} inputs ({listed})")
    return True


# --------------------------------------------------------------------------- quoted numbers
def quote(name: str, value: Any, spec: str = "") -> str:
    """Show ``value`` formatted with ``spec`` (e.g. ",", ".1%", ".2f") and tag it for the prose.

    ``{{name}}`` in the chapter's Markdown becomes this text when the notebook is built; a name
    the run did not quote makes the build fail, so no number in the text can go stale.
    """
    if not name.isidentifier():
        raise ValueError(f"quote name must be an identifier, got {name!r}")
    text = format(value, spec)
    try:
        from IPython.display import display  # present in every Jupyter kernel
    except ImportError:  # plain `python`: just print
        print(f"quoted in the text: {name} = {text}")
        return text
    display({"text/plain": f"quoted in the text: {name} = {text}", QUOTE_MIME: {name: text}}, raw=True)
    return text
