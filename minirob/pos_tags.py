"""Brown's 87 part-of-speech tags, mapped to the 12 universal tags of Petrov, Das & McDonald (2012).

Brown tags words finely (``bedz`` is "was", ``ppss`` a subject pronoun other than 3rd singular,
``nn$`` a possessive noun). Petrov, Das & McDonald, "A Universal Part-of-Speech Tagset" (LREC 2012,
arXiv:1104.2086), map 25 treebanks' tags onto twelve coarse ones that every language has:

    NOUN VERB ADJ ADV PRON DET ADP NUM CONJ PRT . X

(ADP: prepositions and subordinating conjunctions; PRT: particles and other function words;
``.``: punctuation; X: foreign words, typos, everything else). Their mapping for Brown is the
``en-brown.map`` file NLTK ships as ``universal_tagset`` (what ``nltk.corpus.brown.tagged_words(
tagset="universal")`` uses). :data:`BROWN_TO_UNIVERSAL` below writes its base tags out, and
:func:`universal_tag` reads Brown's compound tags with four rules:

* ``-hl`` (headline), ``-tl`` (title) and ``-nc`` (cited word) say where a word stands, not what
  it is: dropped (``nn-tl`` is ``nn``). Two tags in the corpus carry a cut-off marker, ``-t`` and
  ``-n`` (``in+at-t``, ``ppss+ber-n``); they are dropped the same way.
* ``fw-`` marks a foreign word: X, whatever follows (``fw-nn``, ``fw-in+at``).
* ``*`` glued to a verb tag marks a negated form (``bez*`` "isn't", ``md*`` "can't"): the verb's
  tag. On its own, ``*`` is the negator "not"/"n't": ADV.
* ``+`` joins the tags of a contraction (``pps+bez`` "it's", ``vb+ppo`` "let's"). It is a verb when
  its first part is one; a pronoun, noun or wh-word fused with a verb (``it's``, ``John's`` for
  "John is", ``who'll``) is PRT, as en-brown.map tags it; otherwise it takes its first part's tag
  (``in+ppo``, ``nn+nn``, ``rb+cs``). Three parts (``wdt+do+pps`` "what'd he") are X.

Two rare contractions come out differently from en-brown.map, which lists each compound by hand:
``do+ppss`` ("d'you": VERB here, X there) and ``wrb+in`` (ADV here, PRT there).
"""

from __future__ import annotations

#: The twelve universal tags, in the order of the paper's table 1 ("." is punctuation).
UNIVERSAL_TAGS = ("NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".", "X")

#: Brown's base tags (lower case, as the corpus writes them) -> universal tag, as en-brown.map maps
#: them. Possessives (``$``) are tags of their own in Brown and are listed here.
BROWN_TO_UNIVERSAL: dict[str, str] = {
    # punctuation: sentence closers, comma, colon, dash, brackets, quotes
    ".": ".", ",": ".", ":": ".", "--": ".", "(": ".", ")": ".", "``": ".", "''": ".", "'": ".",
    # the negator "not", "n't"
    "*": "ADV",
    # determiners: articles, singular/plural/either determiners, wh-determiners, "both"
    "at": "DET", "dt": "DET", "dti": "DET", "dts": "DET", "dtx": "DET", "dt$": "DET", "abx": "DET",
    "wdt": "DET", "pp$": "DET", "wp$": "DET",
    # pre-qualifiers and pre-quantifiers ("quite", "all", "half"), post-determiners ("many", "next")
    "abl": "PRT", "abn": "PRT", "ap": "ADJ", "ap$": "PRT",
    # forms of be, have, do, modals, and main verbs
    "be": "VERB", "bed": "VERB", "bedz": "VERB", "beg": "VERB", "bem": "VERB", "ben": "VERB",
    "ber": "VERB", "bez": "VERB",
    "hv": "VERB", "hvd": "VERB", "hvg": "VERB", "hvn": "VERB", "hvz": "VERB",
    "do": "VERB", "dod": "VERB", "doz": "VERB", "md": "VERB",
    "vb": "VERB", "vbd": "VERB", "vbg": "VERB", "vbn": "VERB", "vbz": "VERB",
    # conjunctions: coordinating; subordinating ones are adpositions in the universal set
    "cc": "CONJ", "cs": "ADP",
    # numbers: cardinals; ordinals are adjectives; "1960's" (cd$) is a noun
    "cd": "NUM", "od": "ADJ", "cd$": "NOUN",
    # "there" in "there is": a function word
    "ex": "PRT",
    # prepositions
    "in": "ADP",
    # adjectives: plain, comparative, superlative (two tags); possessive adjective
    "jj": "ADJ", "jjr": "ADJ", "jjs": "ADJ", "jjt": "ADJ", "jj$": "PRT",
    # nouns: common, proper, adverbial ("home", "Friday"), singular/plural, possessive
    "nn": "NOUN", "nns": "NOUN", "np": "NOUN", "nps": "NOUN", "nr": "NOUN", "nrs": "NOUN",
    "nn$": "NOUN", "nns$": "NOUN", "np$": "NOUN", "nps$": "NOUN", "nr$": "NOUN",
    # nominal pronouns ("everybody", "nothing") are nouns in en-brown.map
    "pn": "NOUN", "pn$": "NOUN",
    # personal, reflexive and wh- pronouns
    "pp$$": "PRON", "ppl": "PRON", "ppls": "PRON", "ppo": "PRON", "pps": "PRON", "ppss": "PRON",
    "wpo": "PRON", "wps": "PRON",
    # adverbs, qualifiers ("very"), wh-adverbs and wh-qualifiers
    "rb": "ADV", "rbr": "ADV", "rbt": "ADV", "rn": "ADV", "ql": "ADV", "qlp": "ADV",
    "wrb": "ADV", "wql": "ADV", "rb$": "PRT",
    # particles, the infinitive marker, interjections
    "rp": "PRT", "to": "PRT", "uh": "PRT",
    # a word the corpus left untagged
    "nil": "X",
}

# Markers after a tag that say where the word stands, not what it is (``-t``/``-n``: cut off).
_POSITION_MARKERS = ("-hl", "-tl", "-nc", "-t", "-n")


def universal_tag(brown_tag: str) -> str | None:
    """The universal tag of one Brown tag (any case, compounds included), ``None`` if it is not a
    Brown tag. See the module docstring for the rules.

    >>> [universal_tag(t) for t in ("nn-tl", "bez*", "pps+bez", "fw-in+at-tl", "---hl")]
    ['NOUN', 'VERB', 'PRT', 'X', '.']
    """
    tag = brown_tag.lower()
    if tag in BROWN_TO_UNIVERSAL:  # also "--", "*", "''": tags that contain the marker characters
        return BROWN_TO_UNIVERSAL[tag]
    stripped = True
    while stripped and tag not in BROWN_TO_UNIVERSAL:
        stripped = False
        for marker in _POSITION_MARKERS:
            if tag.endswith(marker) and len(tag) > len(marker):
                tag, stripped = tag[: -len(marker)], True
                break
    if tag.startswith("fw-") and len(tag) > 3:
        return "X"
    pieces = tag.split("+")
    if len(pieces) > 2 and all(pieces):
        return "X"  # "what'd he", "what're they": three words in one token
    parts = [_base(piece) for piece in pieces]
    if None in parts:
        return None
    if len(parts) == 1:
        return parts[0]
    first, second = parts
    if first == "VERB":
        return "VERB"
    return "PRT" if second == "VERB" else first


def _base(part: str) -> str | None:
    """One part of a compound: a base tag, or a verb tag with the negator ``*`` glued on."""
    if part in BROWN_TO_UNIVERSAL:
        return BROWN_TO_UNIVERSAL[part]
    if part.endswith("*") and BROWN_TO_UNIVERSAL.get(part[:-1]) == "VERB":
        return "VERB"
    return None
