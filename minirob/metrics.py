"""The scores fine-tuning reports: accuracy, macro-F1, confusion matrices, entity-level P/R/F1.

Classification is scored per example. NER is scored per *entity*, the way the CoNLL shared tasks
did it with their ``conlleval`` script: a predicted entity counts only if its type, first word and
last word all match a gold entity exactly. Getting two words of a three-word name right earns
nothing, which is why entity F1 sits far below per-token accuracy on hard data such as WNUT-16.

Turning a tag sequence into entities follows conlleval's chunk rules, so sloppy predictions (an
``I-PER`` after ``O``, an ``I-LOC`` after ``B-PER``) are read the same way every published NER
score reads them: an ``I-`` that does not continue an entity of its own type starts a new one.
The rules also accept the IOBES end/single tags (``E-``, ``S-``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Sequence

from .errors import InputError

# ------------------------------------------------------------------ classification


def _check_pair(y_true: Sequence, y_pred: Sequence) -> None:
    if len(y_true) != len(y_pred):
        raise InputError(
            f"got {len(y_true)} gold labels but {len(y_pred)} predictions; they must pair up"
        )
    if not len(y_true):
        raise InputError("cannot score an empty set of predictions")


def accuracy(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> float:
    """Fraction of examples whose predicted label equals the gold label."""
    _check_pair(y_true, y_pred)
    return sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)


def confusion_matrix(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable], labels: Sequence[Hashable]
) -> list[list[int]]:
    """``matrix[i][j]`` = how many examples of gold label ``labels[i]`` were predicted ``labels[j]``.

    Rows are the truth, columns the prediction (scikit-learn's convention), so the diagonal holds
    the correct answers and row sums are the class sizes.
    """
    _check_pair(y_true, y_pred)
    index = {label: i for i, label in enumerate(labels)}
    for value in (*y_true, *y_pred):
        if value not in index:
            raise InputError(f"label {value!r} is not one of the known labels {list(labels)}")
    matrix = [[0] * len(labels) for _ in labels]
    for t, p in zip(y_true, y_pred):
        matrix[index[t]][index[p]] += 1
    return matrix


def _prf(true_positives: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall, F1; a ratio with an empty denominator is 0 (nothing to be right about)."""
    precision = true_positives / n_pred if n_pred else 0.0
    recall = true_positives / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def per_class_prf(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable], labels: Sequence[Hashable]
) -> dict[Hashable, dict[str, float]]:
    """Precision, recall, F1 and support of each class, read off the confusion matrix."""
    matrix = confusion_matrix(y_true, y_pred, labels)
    scores = {}
    for i, label in enumerate(labels):
        n_gold = sum(matrix[i])  # row: everything that truly is `label`
        n_pred = sum(row[i] for row in matrix)  # column: everything predicted as `label`
        precision, recall, f1 = _prf(matrix[i][i], n_pred, n_gold)
        scores[label] = {"precision": precision, "recall": recall, "f1": f1, "support": n_gold}
    return scores


def macro_f1(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable], labels: Sequence[Hashable] | None = None
) -> float:
    """The unweighted mean of the per-class F1 scores.

    Unlike accuracy it does not let a majority class hide a minority class the model never gets
    right. ``labels`` defaults to every label seen in either sequence.
    """
    if labels is None:
        labels = sorted(set(y_true) | set(y_pred), key=str)
    scores = per_class_prf(y_true, y_pred, labels)
    return sum(s["f1"] for s in scores.values()) / len(labels)


def classification_report(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable], labels: Sequence[Hashable]
) -> dict:
    """Everything a classification run reports, as a JSON-ready dict."""
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, labels),
        "per_class": {str(k): v for k, v in per_class_prf(y_true, y_pred, labels).items()},
        "labels": [str(label) for label in labels],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels),
        "n": len(y_true),
    }


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Save the matrix as a PNG heat map with the counts written in each cell."""
    # A bare Figure renders to a file without pyplot: no global backend switch (which would turn
    # off a Jupyter session's inline plots).
    from matplotlib.figure import Figure

    n = len(labels)
    fig = Figure(figsize=(1.2 + 0.9 * n, 1.0 + 0.8 * n))
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), [str(x) for x in labels], rotation=45, ha="right")
    ax.set_yticks(range(n), [str(x) for x in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            colour = "white" if peak and count > peak / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


# ------------------------------------------------------------------ entities (conlleval)


@dataclass(frozen=True)
class Entity:
    """A typed span of words, ``start`` and ``end`` inclusive (conlleval's convention)."""

    type: str
    start: int
    end: int


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", "")``; a bare ``"B"`` -> ``("B", "")``."""
    if tag == "O":
        return "O", ""
    prefix, _, kind = tag.partition("-")
    if prefix not in ("B", "I", "E", "S"):
        raise InputError(f"tag {tag!r} is not O or B-/I-/E-/S- followed by a type")
    return prefix, kind


def _ends_before(prev: str, prev_kind: str, cur: str, kind: str) -> bool:
    """Does the entity open at the previous word close before the current word?"""
    if prev == "O":
        return False
    if prev in ("E", "S"):  # explicitly the last word of its entity
        return True
    if cur in ("B", "S", "O"):  # the current word starts something else, or nothing
        return True
    return prev_kind != kind  # an I-/E- of another type cannot continue this entity


def _starts_at(prev: str, prev_kind: str, cur: str, kind: str) -> bool:
    """Does a new entity open at the current word?"""
    if cur == "O":
        return False
    if cur in ("B", "S"):
        return True
    # cur is I or E: it continues the previous entity only if one is open and of the same type.
    return prev in ("O", "E", "S") or prev_kind != kind


def extract_entities(tags: Sequence[str]) -> list[Entity]:
    """Read the entities out of one sentence's tag sequence, under conlleval's rules."""
    entities: list[Entity] = []
    prev, prev_kind, start = "O", "", 0
    for i, tag in enumerate([*tags, "O"]):  # a final O closes whatever is still open
        cur, kind = split_tag(tag)
        if _ends_before(prev, prev_kind, cur, kind):
            entities.append(Entity(prev_kind, start, i - 1))
        if _starts_at(prev, prev_kind, cur, kind):
            start = i
        prev, prev_kind = cur, kind
    return entities


@dataclass
class EntityScores:
    """Entity-level precision/recall/F1 overall (micro-averaged over entities) and per type."""

    precision: float
    recall: float
    f1: float
    n_gold: int
    n_pred: int
    n_correct: int
    per_type: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "n_gold": self.n_gold,
            "n_pred": self.n_pred,
            "n_correct": self.n_correct,
            "per_type": self.per_type,
        }


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> EntityScores:
    """Score predicted tag sequences against gold ones, sentence by sentence.

    ``gold`` and ``pred`` are lists of sentences, each a list of tags of the same length.
    """
    if len(gold) != len(pred):
        raise InputError(f"got {len(gold)} gold sentences but {len(pred)} predicted ones")
    gold_count: Counter = Counter()
    pred_count: Counter = Counter()
    correct_count: Counter = Counter()
    for n, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise InputError(
                f"sentence {n}: {len(g)} gold tags but {len(p)} predicted tags; they must pair up"
            )
        gold_entities = set(extract_entities(g))
        pred_entities = set(extract_entities(p))
        gold_count.update(e.type for e in gold_entities)
        pred_count.update(e.type for e in pred_entities)
        correct_count.update(e.type for e in gold_entities & pred_entities)
    per_type = {}
    for kind in sorted(set(gold_count) | set(pred_count)):
        precision, recall, f1 = _prf(correct_count[kind], pred_count[kind], gold_count[kind])
        per_type[kind] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": gold_count[kind],
        }
    n_correct, n_pred, n_gold = (
        sum(correct_count.values()),
        sum(pred_count.values()),
        sum(gold_count.values()),
    )
    precision, recall, f1 = _prf(n_correct, n_pred, n_gold)
    return EntityScores(precision, recall, f1, n_gold, n_pred, n_correct, per_type)
