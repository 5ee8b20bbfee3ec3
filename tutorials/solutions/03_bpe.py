# Answers to the exercises of chapter 3 (tutorials/src/03_bpe.py).
# `tutorials/build.py --solutions` puts each section below in place of the exercise's stub; the
# chapter's own check then proves it. Names (table, ...) come from the chapter's cells.

# %% solution: to_byte_symbols
def to_byte_symbols(text: str) -> str:
    return "".join(table[b] for b in text.encode("utf-8"))

# %% solution: decode_tokens
def decode_tokens(tokens: list[str]) -> str:
    byte_of = {symbol: b for b, symbol in table.items()}  # the inverse of the byte table
    return bytes(byte_of[ch] for ch in "".join(tokens)).decode("utf-8")

# %% solution: encode_piece
def encode_piece(piece: str, ranks: dict[tuple[str, str], int]) -> tuple[str, ...]:
    symbols = list(piece)
    while len(symbols) > 1:
        known = [pair for pair in zip(symbols, symbols[1:]) if pair in ranks]
        if not known:
            break
        best = min(known, key=ranks.get)  # learned earliest
        out, i = [], 0
        while i < len(symbols):  # glue every occurrence, left to right
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                out.append(best[0] + best[1])
                i += 2
            else:
                out.append(symbols[i])
                i += 1
        symbols = out
    return tuple(symbols)
