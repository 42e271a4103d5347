#!/usr/bin/env bash
# The main job on the embedded default data. $1: the venv's bin folder; $2: output folder.
#  1. synthesise a Hub-like ecosystem and build its atlas (metadata);
#  2. summarise it, write the Model Atlas statistics report and the Anatomy ecosystem report;
#  3. train the tiny weight zoo and chart it from weights with our method, against ground truth;
#  4. cache the web layout, so that `modelatlas serve --atlas OUT/atlas.duckdb` opens at once.
set -euo pipefail
BIN=${1:-.venv/bin}
OUT=${2:-out/demo}
MA="$BIN/modelatlas"
mkdir -p "$OUT"
rm -f "$OUT/atlas.duckdb"
"$MA" synth --models 20000 --seed 0 --out "$OUT/synthetic-hub.parquet"
"$MA" ingest "$OUT/synthetic-hub.parquet" --atlas "$OUT/atlas.duckdb"
"$MA" info --atlas "$OUT/atlas.duckdb"
"$MA" stats --atlas "$OUT/atlas.duckdb" > "$OUT/stats.txt"
"$MA" report --atlas "$OUT/atlas.duckdb" --out "$OUT/report"
"$MA" ecosystem report --atlas "$OUT/atlas.duckdb" --out "$OUT/ecosystem"
if "$BIN/python" -c "import torch" 2>/dev/null; then
  [ -f "$OUT/zoo/manifest.json" ] || "$MA" zoo build tiny --out "$OUT/zoo"
  "$MA" chart "$OUT/zoo" --method auto --atlas "$OUT/zoo-atlas.duckdb"
else
  echo "PyTorch is not installed: skipping the weight zoo (pip install 'modelatlas[torch]')"
fi
"$MA" layout --atlas "$OUT/atlas.duckdb"
echo
echo "done: atlas $OUT/atlas.duckdb, reports $OUT/report and $OUT/ecosystem, statistics $OUT/stats.txt"
echo "see it: $MA serve --atlas $OUT/atlas.duckdb"
