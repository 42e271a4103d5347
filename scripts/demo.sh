#!/usr/bin/env bash
# The main job on the embedded default data: synthesise a Hub-like ecosystem, build its atlas,
# print the summary and write a report. $1: the venv's bin folder; $2: output folder.
set -euo pipefail
BIN=${1:-.venv/bin}
OUT=${2:-out/demo}
mkdir -p "$OUT"
"$BIN/modelatlas" synth --models 20000 --seed 0 --out "$OUT/synthetic-hub.parquet"
"$BIN/modelatlas" ingest "$OUT/synthetic-hub.parquet" --atlas "$OUT/atlas.duckdb"
"$BIN/modelatlas" info --atlas "$OUT/atlas.duckdb"
echo "atlas written to $OUT/atlas.duckdb"
