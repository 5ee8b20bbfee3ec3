"""minirob.metrics against independent references: seqeval (conlleval rules), scikit-learn, hand counts."""

import pytest
import sklearn.metrics as sklearn_metrics  # reference for accuracy, macro-F1, confusion
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report as seqeval_report
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

from minirob.errors import InputError
from minirob.metrics import (
    Entity,
    accuracy,
    classification_report,
    confusion_matrix,
    entity_scores,
    extract_entities,
    macro_f1,
    plot_confusion_matrix,
)

# Tags drawn from IOB2 and IOBES over three types, so the strategy produces every awkward case:
# I- after O, I- of another type, E- without B-, S- inside an entity, ...
TAGS = ["O"] + [f"{p}-{t}" for p in "BIES" for t in ("PER", "LOC", "ORG")]
IOB_TAGS = ["O"] + [f"{p}-{t}" for p in "BI" for t in ("PER", "LOC", "ORG")]
sentence = st.lists(st.sampled_from(TAGS), min_size=0, max_size=12)


def paired_corpus(tags):
    """Lists of (gold, predicted) sentences of equal lengths."""
    return st.lists(
        st.integers(0, 12).flatmap(
            lambda n: st.tuples(
                st.lists(st.sampled_from(tags), min_size=n, max_size=n),
                st.lists(st.sampled_from(tags), min_size=n, max_size=n),
            )
        ),
        min_size=1,
        max_size=8,
    )


@settings(max_examples=300, deadline=None)
@given(sentence)
def test_entities_agree_with_seqeval(tags):
    ours = [(e.type, e.start, e.end) for e in extract_entities(tags)]
    assert ours == get_entities(list(tags))


@settings(max_examples=300, deadline=None)
@given(paired_corpus(TAGS))
def test_entity_scores_agree_with_seqeval(pairs):
    gold = [list(g) for g, _ in pairs]
    pred = [list(p) for _, p in pairs]
    ours = entity_scores(gold, pred)
    assert ours.precision == pytest.approx(precision_score(gold, pred, zero_division=0))
    assert ours.recall == pytest.approx(recall_score(gold, pred, zero_division=0))
    assert ours.f1 == pytest.approx(f1_score(gold, pred, zero_division=0))
    reference = seqeval_report(gold, pred, output_dict=True, zero_division=0)
    for kind, scores in ours.per_type.items():
        if scores["support"] == 0:
            continue  # seqeval lists only types that occur in the gold (or drops them): skip
        assert scores["precision"] == pytest.approx(reference[kind]["precision"])
        assert scores["recall"] == pytest.approx(reference[kind]["recall"])
        assert scores["f1"] == pytest.approx(reference[kind]["f1-score"])
        assert scores["support"] == reference[kind]["support"]


def test_entities_hand_examples():
    # conlleval: an I- after O opens an entity; an I- of another type closes one and opens another.
    assert extract_entities(["B-PER", "I-PER", "O", "I-LOC", "I-ORG", "B-ORG"]) == [
        Entity("PER", 0, 1),
        Entity("LOC", 3, 3),
        Entity("ORG", 4, 4),
        Entity("ORG", 5, 5),
    ]
    assert extract_entities([]) == []
    with pytest.raises(InputError, match="X-PER"):
        extract_entities(["X-PER"])


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    s = entity_scores(gold, pred)
    # 3 gold entities, 3 predicted, 2 match exactly (PER 0-1 and ORG 0-0).
    assert (s.n_gold, s.n_pred, s.n_correct) == (3, 3, 2)
    assert s.f1 == pytest.approx(2 / 3)
    assert s.per_type["LOC"]["recall"] == 0.0 and s.per_type["ORG"]["precision"] == 0.5
    with pytest.raises(InputError, match="sentence 0"):
        entity_scores([["O"]], [["O", "O"]])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1, max_size=40))
def test_classification_agrees_with_sklearn(pairs):
    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    labels = ["a", "b", "c"]
    assert accuracy(y_true, y_pred) == pytest.approx(sklearn_metrics.accuracy_score(y_true, y_pred))
    assert macro_f1(y_true, y_pred, labels) == pytest.approx(
        sklearn_metrics.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    assert confusion_matrix(y_true, y_pred, labels) == (
        sklearn_metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    )


def test_classification_by_hand(tmp_path):
    y_true = ["pos", "pos", "neg", "neg", "neg"]
    y_pred = ["pos", "neg", "neg", "neg", "pos"]
    assert accuracy(y_true, y_pred) == pytest.approx(3 / 5)
    # pos: P 1/2 R 1/2 F1 1/2; neg: P 2/3 R 2/3 F1 2/3 -> macro (1/2 + 2/3) / 2 = 7/12
    assert macro_f1(y_true, y_pred, ["neg", "pos"]) == pytest.approx(7 / 12)
    report = classification_report(y_true, y_pred, ["neg", "pos"])
    assert report["confusion_matrix"] == [[2, 1], [1, 1]]
    png = plot_confusion_matrix(report["confusion_matrix"], ["neg", "pos"], tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="'maybe'"):
        confusion_matrix(["pos"], ["maybe"], ["neg", "pos"])
    with pytest.raises(InputError, match="2 gold labels but 1"):
        accuracy(["a", "b"], ["a"])
