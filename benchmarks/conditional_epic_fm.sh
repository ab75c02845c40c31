#!/bin/bash
# Conditional vs unconditional EPiC-FM on the same 3,000 fresh real jets (docs/results.md, "Conditional
# generation"): the conditional run gets each real jet's pT, mass and multiplicity (--conditions), the
# shipped unconditional epic-fm-top30 draws its own; 3 sampling seeds, pcgen eval against the same jets.
# Usage: benchmarks/conditional_epic_fm.sh RUN_FOLDER [OUT_DIR]   (the real jets: Pythia seed 1000, 12,000 jets)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:?give the run folder of a model trained with data.conditions=["pt","mass"]}
OUT=${2:-conditional-epic-fm}
mkdir -p "$OUT"
.venv/bin/pcgen data generate --jets 12000 --seed 1000 --out "$OUT/real.h5" --quiet
for s in 0 1 2; do
  .venv/bin/pcgen sample --checkpoint "$RUN" --conditions "$OUT/real.h5" --n 3000 --seed $s --out "$OUT/cond-$s.h5" --force
  .venv/bin/pcgen eval --samples "$OUT/cond-$s.h5" --reference "$OUT/real.h5" --n 3000 --json "$OUT/cond-$s.json" --force
  .venv/bin/pcgen sample --pretrained epic-fm-top30 --n 3000 --seed $s --out "$OUT/unc-$s.h5" --force
  .venv/bin/pcgen eval --samples "$OUT/unc-$s.h5" --reference "$OUT/real.h5" --n 3000 --json "$OUT/unc-$s.json" --force
done
