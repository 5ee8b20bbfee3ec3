"""Brown's tags -> the universal tagset, and the POS task's data and splits.

Independent references:
* NLTK's reading of the same corpus with the same mapping (``brown.tagged_words(tagset="universal")``,
  which applies en-brown.map from Petrov, Das & McDonald's universal tagset): its tag counts over all
  1,161,192 tokens are NOUN 275,558, VERB 182,750, . 147,565, ADP 144,766, DET 137,019, ADJ 83,721,
  ADV 56,239, PRON 49,334, CONJ 38,151, PRT 29,829, NUM 14,874, X 1,386.
* en-brown.map's entries for single tags, checked by hand (the list in ``test_hand_checked_tags``).
* The Brown manual (Francis & Kucera) for what each tag means, in the comments.
NLTK itself is not installed here: its mapping files live in nltk_data, which PyPI does not carry.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from minirob import corpora, datasets
from minirob.errors import DataError
from minirob.pos_tags import BROWN_TO_UNIVERSAL, UNIVERSAL_TAGS, universal_tag


def test_the_twelve_tags_and_every_base_tag_maps_into_them():
    assert len(UNIVERSAL_TAGS) == 12 and set(BROWN_TO_UNIVERSAL.values()) <= set(UNIVERSAL_TAGS)


@pytest.mark.parametrize(
    "brown, universal",
    [
        ("at", "DET"),      # article: the, a
        ("nn", "NOUN"), ("np$", "NOUN"), ("nns", "NOUN"),
        ("vbd", "VERB"), ("bedz", "VERB"), ("md", "VERB"), ("hvz", "VERB"),
        ("in", "ADP"), ("cs", "ADP"),  # subordinating conjunctions are adpositions
        ("cc", "CONJ"), ("cd", "NUM"), ("od", "ADJ"),
        ("jj", "ADJ"), ("jjt", "ADJ"), ("ap", "ADJ"),
        ("rb", "ADV"), ("ql", "ADV"), ("wrb", "ADV"), ("*", "ADV"),  # "not"
        ("pps", "PRON"), ("ppo", "PRON"), ("wps", "PRON"), ("pp$", "DET"), ("pn", "NOUN"),
        ("to", "PRT"), ("rp", "PRT"), ("ex", "PRT"), ("uh", "PRT"), ("abn", "PRT"),
        (",", "."), ("``", "."), ("--", "."), ("nil", "X"),
    ],
)
def test_hand_checked_tags(brown, universal):
    assert universal_tag(brown) == universal
    assert universal_tag(brown.upper()) == universal  # NLTK writes the tags in capitals


@pytest.mark.parametrize(
    "brown, universal",
    [
        ("nn-tl", "NOUN"), ("nn-tl-hl", "NOUN"), ("vbn-tl-nc", "VERB"), ("---hl", "."), ("*-hl", "ADV"),
        ("fw-nn", "X"), ("fw-in+at-tl", "X"), ("fw-*", "X"),
        ("bez*", "VERB"), ("md*-hl", "VERB"), ("do*", "VERB"),
        ("pps+bez", "PRT"), ("ppss+bez*", "PRT"), ("nn+bez-tl", "PRT"), ("wrb+dod*", "PRT"),
        ("vb+ppo", "VERB"), ("md+hv", "VERB"), ("in+ppo", "ADP"), ("nn+nn-nc", "NOUN"), ("rb+cs", "ADV"),
        ("to+vb", "PRT"), ("wdt+ber+pp", "X"), ("in+at-t", "ADP"), ("ppss+ber-n", "PRT"),
        ("do+ppss", "VERB"), ("wrb+in", "ADV"),  # the two documented departures from en-brown.map
    ],
)
def test_compound_tags(brown, universal):
    assert universal_tag(brown) == universal


@pytest.mark.parametrize("tag", ["xyz", "nn+", "+", "-hl", "fw-", "pp", "nn$$", "jj*", ""])
def test_tags_outside_the_mapping(tag):
    assert universal_tag(tag) is None


# --------------------------------------------------------------------------------------------------
# The real corpus
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def brown_pos():
    return corpora.read_brown_pos(datasets.fetch("brown", progress=False))


def test_whole_corpus_distribution_equals_nltks(brown_pos):
    """All 1,161,192 tokens, tag by tag, as NLTK counts them, but for the two rare contractions
    mapped by rule (module docstring of pos_tags): one do+ppss (VERB, not X) and one wrb+in (ADV,
    not PRT)."""
    counts = Counter(tag for sentences in brown_pos.values() for sentence in sentences for _word, tag in sentence)
    nltk = {"NOUN": 275558, "VERB": 182750, ".": 147565, "ADP": 144766, "DET": 137019, "ADJ": 83721,
            "ADV": 56239, "PRON": 49334, "CONJ": 38151, "PRT": 29829, "NUM": 14874, "X": 1386}  # fmt: skip
    departures = {"VERB": +1, "X": -1, "ADV": +1, "PRT": -1}
    assert dict(counts) == {tag: n + departures.get(tag, 0) for tag, n in nltk.items()}
    assert sum(counts.values()) == 1_161_192


def test_first_sentence_of_ca01(brown_pos):
    """The corpus's first sentence, tagged by hand from its Brown tags and the table."""
    first = brown_pos["ca01"][0]
    assert first[:9] == [("The", "DET"), ("Fulton", "NOUN"), ("County", "NOUN"), ("Grand", "ADJ"),
                         ("Jury", "NOUN"), ("said", "VERB"), ("Friday", "NOUN"), ("an", "DET"),
                         ("investigation", "NOUN")]  # fmt: skip
    assert ('"', ".") in first and ("that", "ADP") in first and first[-1] == (".", ".")


def test_pos_splits_hold_out_pretrainings_documents(brown_pos):
    """The POS test part is exactly the sentences of split_brown's test documents (seed 0, as
    pretraining uses), so a pretrained model never read a test sentence."""
    documents = datasets.split_brown(datasets.load_brown(progress=False), seed=0)
    splits = corpora.split_brown_pos(brown_pos, seed=0)
    for part in ("train", "validation", "test"):
        expected = [s for document in getattr(documents, part) for s in brown_pos[document.id]]
        assert getattr(splits, part) == expected
    assert sum(len(getattr(splits, part)) for part in ("train", "validation", "test")) == 57_340
    assert len(datasets.load_brown_pos("test", progress=False)) == len(splits.test)


# --------------------------------------------------------------------------------------------------
# Small hand-made corpora
# --------------------------------------------------------------------------------------------------


def brown_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    """A cache entry for 'brown' that fetch accepts, holding the given files."""
    entry = tmp_path / "brown"
    entry.mkdir()
    for name, text in files.items():
        (entry / name).write_text(text)
    manifest = {"sha256": datasets.SOURCES["brown"].sha256, "files": sorted(files)}
    (entry / datasets.MANIFEST).write_text(json.dumps(manifest))
    return entry


def test_tag_outside_the_mapping_names_file_and_line(tmp_path):
    entry = brown_dir(tmp_path, {"cats.txt": "ca01 news\n", "ca01": "\tGood/jj ./.\n\n\tA/at bad/zz-tl word/nn\n"})
    with pytest.raises(DataError, match=r"ca01:3: the word 'bad' has the tag 'zz-tl', which is not a Brown tag"):
        corpora.read_brown_pos(entry)
    with pytest.raises(DataError, match=r"ca01:3:"):
        datasets.load_brown_pos("train", cache_dir=tmp_path, progress=False)


def test_small_corpus_words_and_tags(tmp_path):
    brown_dir(tmp_path, {"cats.txt": "ca01 news\n", "ca01": "\t``/`` It's/pps+bez 1-1/2/cd ''/'' !/.\n"})
    tagged = corpora.read_brown_pos(tmp_path / "brown")
    assert tagged == {"ca01": [[('"', "."), ("It's", "PRT"), ("1-1/2", "NUM"), ('"', "."), ("!", ".")]]}
    with pytest.raises(DataError, match="split='dev'"):
        datasets.load_brown_pos("dev", cache_dir=tmp_path)
