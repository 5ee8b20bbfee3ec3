"""Readers for the user's own files, on small files the tests write themselves."""

from __future__ import annotations

import csv
import warnings

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from minirob.errors import DataError, MissingFileError
from minirob.readers import (
    LabelledText,
    check_bio,
    read_conll,
    read_table,
    read_text,
    split_documents,
    text_lines,
)

# --------------------------------------------------------------------------------------------------
# Plain text
# --------------------------------------------------------------------------------------------------


def test_blank_lines_separate_documents(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("First doc,\nline two.\n\n\nSecond doc.\r\n \t \r\nThird.\n\n")
    assert read_text(path) == ["First doc,\nline two.", "Second doc.", "Third."]
    assert split_documents("one\n\ntwo") == ["one", "two"]


def test_folder_reads_matching_files_in_sorted_order(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("B1\n\nB2\n")
    (tmp_path / "sub" / "a.txt").write_text("A\n")
    (tmp_path / "a.txt").write_text("root A\n")
    (tmp_path / "notes.md").write_text("not text\n")
    (tmp_path / ".hidden.txt").write_text("hidden\n")
    assert read_text(tmp_path) == ["root A", "B1", "B2", "A"]
    assert read_text(tmp_path, pattern="*.md") == ["not text"]


def test_text_bad_inputs(tmp_path):
    with pytest.raises(MissingFileError, match="nope.txt: no such file"):
        read_text(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(DataError, match="empty.txt: the file is empty"):
        read_text(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("ok\nfine\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt:3: not valid UTF-8"):
        read_text(tmp_path / "latin1.txt")
    folder = tmp_path / "none"
    folder.mkdir()
    with pytest.raises(DataError, match="holds no files matching"):
        read_text(folder)


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def test_csv_tsv_jsonl_with_named_columns(tmp_path):
    (tmp_path / "a.csv").write_text('id,review,stars\n1,"Great, really",5\n2,"Said ""meh""",2\n')
    assert read_table(tmp_path / "a.csv", text_column="review", label_column="stars") == [
        LabelledText("Great, really", "5"),
        LabelledText('Said "meh"', "2"),
    ]
    (tmp_path / "a.tsv").write_text("text\tlabel\nhello, world\tpos\n")
    assert read_table(tmp_path / "a.tsv") == [LabelledText("hello, world", "pos")]
    (tmp_path / "a.jsonl").write_text('{"text": "x", "label": 1}\n\n{"text": "y", "label": 0, "extra": true}\n')
    assert read_table(tmp_path / "a.jsonl") == [LabelledText("x", 1), LabelledText("y", 0)]
    assert read_table(tmp_path / "a.jsonl", label_column=None) == [LabelledText("x", None), LabelledText("y", None)]
    (tmp_path / "data.txt").write_text("text,label\nz,1\n")
    assert read_table(tmp_path / "data.txt", format="csv") == [LabelledText("z", "1")]


def test_line_breaks_inside_cells_and_unicode_separators(tmp_path):
    """A quoted CSV cell may hold a newline; U+2028 and U+0085 are characters, not line ends
    (str.splitlines would split there)."""
    (tmp_path / "a.csv").write_text('text,label\n"two\nlines",1\nnext,0\n')
    assert read_table(tmp_path / "a.csv") == [LabelledText("two\nlines", "1"), LabelledText("next", "0")]
    (tmp_path / "a.jsonl").write_text('{"text": "a\u2028b", "label": 1}\n', encoding="utf-8")
    assert read_table(tmp_path / "a.jsonl") == [LabelledText("a\u2028b", 1)]
    (tmp_path / "a.conll").write_text("x\x85y\tO\r\nz\tB-PER\r\n", encoding="utf-8")
    assert read_conll(tmp_path / "a.conll", separator="\t") == [[("x\x85y", "O"), ("z", "B-PER")]]
    assert text_lines("a\r\nb\n\nc") == ["a", "b", "", "c"] and text_lines("a\n") == ["a"]


def test_missing_label_column_lists_the_columns(tmp_path):
    (tmp_path / "a.csv").write_text("sentence,label\nhi,1\n")
    with pytest.raises(DataError, match=r"a.csv: no text column 'text'; the columns are \['sentence', 'label'\]"):
        read_table(tmp_path / "a.csv")
    with pytest.raises(DataError, match=r"no label column 'y'"):
        read_table(tmp_path / "a.csv", text_column="sentence", label_column="y")
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(DataError, match=r"a.jsonl: no label column 'label'; the columns are \['text'\]"):
        read_table(tmp_path / "a.jsonl")


def test_table_bad_rows_name_the_line(tmp_path):
    (tmp_path / "a.csv").write_text("text,label\nok,1\n,0\n")
    with pytest.raises(DataError, match=r"a.csv:3: empty or non-text 'text' cell"):
        read_table(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("text,label\nok,1\nfine,\n")
    with pytest.raises(DataError, match=r"b.csv:3: missing 'label' value"):
        read_table(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text("text,label\nok,1\nto,o,many\n")
    with pytest.raises(DataError, match=r"c.csv:3: 3 cells for 2 columns"):
        read_table(tmp_path / "c.csv")
    (tmp_path / "d.jsonl").write_text('{"text": "x", "label": 1}\n{"text": "y", label: 0}\n')
    with pytest.raises(DataError, match=r"d.jsonl:2: not valid JSON"):
        read_table(tmp_path / "d.jsonl")
    (tmp_path / "e.jsonl").write_text('["x", 1]\n')
    with pytest.raises(DataError, match=r"e.jsonl:1: expected a JSON object"):
        read_table(tmp_path / "e.jsonl")
    (tmp_path / "f.csv").write_text("")
    with pytest.raises(DataError, match="f.csv: the file is empty"):
        read_table(tmp_path / "f.csv")
    (tmp_path / "g.csv").write_text("text,label\n")
    with pytest.raises(DataError, match="g.csv: the table has a header but no rows"):
        read_table(tmp_path / "g.csv")
    (tmp_path / "h.xlsx").write_text("x")
    with pytest.raises(DataError, match="cannot tell the table format from '.xlsx'"):
        read_table(tmp_path / "h.xlsx")


# --------------------------------------------------------------------------------------------------
# CoNLL
# --------------------------------------------------------------------------------------------------

CONLL_2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_conll_four_columns_docstart_skipped(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(CONLL_2003)
    assert read_conll(path) == [
        [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC"), ("call", "O")],
        [("Peter", "B-PER"), ("Blackburn", "I-PER")],
    ]


def test_conll_wrong_column_count_names_file_and_line(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("EU B-ORG\nrejects O\n\nPeter NNP B-PER\n")
    with pytest.raises(DataError, match=r"bad.conll:4: expected 2 columns \(as on line 1\), found 3"):
        read_conll(path)
    path.write_text("a\tO\n\tO\n")
    with pytest.raises(DataError, match=r"bad.conll:2: empty token or tag"):
        read_conll(path, separator="\t")
    path.write_text("lonely\n")
    with pytest.raises(DataError, match=r"bad.conll:1: expected at least 2 columns"):
        read_conll(path)


def test_conll_tag_that_is_not_bio_is_an_error(tmp_path):
    path = tmp_path / "bad.conll"
    path.write_text("EU B-ORG\nrejects O\n\nPeter PER\n")
    with pytest.raises(DataError, match=r"bad.conll:4: tag 'PER' is not BIO"):
        read_conll(path)
    path.write_text("Peter B-\n")
    with pytest.raises(DataError, match=r"bad.conll:1: tag 'B-' is not BIO"):
        read_conll(path, bio="strict")


def test_conll_ill_formed_i_tag_is_repaired_or_reported(tmp_path):
    path = tmp_path / "iob.conll"
    path.write_text("the O\nUnited I-ORG\nNations I-ORG\nin O\nNew B-LOC\nYork I-ORG\n")
    with pytest.warns(UserWarning, match="repaired 2 I- tags"):
        (sentence,) = read_conll(path)
    assert [tag for _, tag in sentence] == ["O", "B-ORG", "I-ORG", "O", "B-LOC", "B-ORG"]
    with pytest.raises(DataError, match=r"iob.conll:2: 'I-ORG' follows 'O'"):
        read_conll(path, bio="strict")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (kept,) = read_conll(path, bio="keep")
    assert kept[1] == ("United", "I-ORG") and kept[5] == ("York", "I-ORG")


def test_bio_repair_keeps_the_entities_seqeval_reads():
    """Reference: seqeval (default, conlleval-compatible mode) reads an I- that does not continue an
    entity as the start of a new one; the repair must not change which entities there are."""
    tags = ["I-PER", "I-PER", "O", "I-LOC", "B-ORG", "I-LOC", "I-LOC", "O", "B-MISC", "I-MISC"]
    fixed, repairs = check_bio(tags)
    assert repairs == 3
    assert get_entities(fixed) == get_entities(tags)
    assert check_bio(fixed) == (fixed, 0)  # repaired tags are valid BIO


def test_conll_empty_and_docstart_only_files(tmp_path):
    (tmp_path / "empty.conll").write_text("")
    with pytest.raises(DataError, match="empty.conll: the file is empty"):
        read_conll(tmp_path / "empty.conll")
    (tmp_path / "doc.conll").write_text("-DOCSTART- O\n\n")
    with pytest.raises(DataError, match="doc.conll: no sentences"):
        read_conll(tmp_path / "doc.conll")
    with pytest.raises(DataError, match="bio must be"):
        read_conll(tmp_path / "doc.conll", bio="fix")


def test_long_csv_cell_and_deep_jsonl_are_handled(tmp_path):
    """Issue 19: a CSV cell over the csv module's 131,072-character cap was a csv.Error traceback;
    it is read (a long document is fine text), and the process-wide cap is left as it was. A JSONL
    row nested 100,000 deep was a RecursionError; it is a DataError naming the file and line."""
    import csv

    long_text = "word " * 40_000  # 200,000 characters
    (tmp_path / "long.csv").write_text(f'text,label\n"{long_text}",pos\nshort,neg\n', encoding="utf-8")
    (tmp_path / "long.tsv").write_text(f"text\tlabel\n{long_text}\tpos\n", encoding="utf-8")
    cap = csv.field_size_limit()
    for name in ("long.csv", "long.tsv"):
        rows = read_table(tmp_path / name)
        assert rows[0] == LabelledText(long_text, "pos")
    assert csv.field_size_limit() == cap
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.jsonl").write_text('{"text": "fine", "label": 1}\n{"text": ' + deep + "}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"deep.jsonl:2: JSON nested too deeply"):
        read_table(tmp_path / "deep.jsonl")
