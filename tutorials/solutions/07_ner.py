# Answers to the exercises of chapter 7 (tutorials/src/07_ner.py).
# `tutorials/build.py --solutions` puts each section below in place of the exercise's stub; the
# chapter's own check then proves it. Names (IGNORE, ...) come from the chapter's cells.

# %% solution: first_subword_labels
def first_subword_labels(word_ids: list, word_labels: list[int]) -> list[int]:
    labels, previous = [], None
    for w in word_ids:
        first_piece = w is not None and w != previous  # a new word starts at this token
        labels.append(word_labels[w] if first_piece else IGNORE)
        previous = w
    return labels

# %% solution: entities
def entities(tags: list[str]) -> set[tuple[str, int, int]]:
    found, kind, start = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):  # a final O closes the last entity
        prefix, _, typ = tag.partition("-")
        continues = prefix == "I" and typ == kind
        if kind is not None and not continues:  # the open entity ends before this word
            found.add((kind, start, i - 1))
            kind = None
        if prefix in ("B", "I") and not continues:  # B, or a stray I, opens a new entity
            kind, start = typ, i
    return found
