#!/usr/bin/env bash
# The rule pack on Spark (local mode) next to the embedded engine, on the
# same files, in one run: `posaudit scan` in memory, then `posaudit
# prepare` + the exported job (PySpark, local[THREADS]) + `posaudit import
# spark`; wall seconds of each step, and whether the two findings files
# are byte-identical (they must be).
#
#   benches/spark.sh DIR AS_OF          a folder posaudit-gen wrote (or any inputs)
#   RUNS=3 THREADS=2 benches/spark.sh DIR AS_OF
#
# 1M rows: posaudit-gen --out /tmp/m1/data --merchants 10000 --days 30
#   --txns-per-day 33334 --seed 2027 --violations 0.1 --start 2026-10-01
#   benches/spark.sh /tmp/m1/data 2026-11-05
# Needs a release build (the script builds it), Java 17 and `pip install pyspark`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: benches/spark.sh DIR AS_OF}
as_of=${2:?usage: benches/spark.sh DIR AS_OF}
runs=${RUNS:-1}
threads=${THREADS:-$(nproc)}

# The same packages as the tests and peer.sh build: any other selection
# turns on other polars features and rebuilds polars (15-40 minutes here).
cargo build --release --quiet --locked -p posaudit -p posaudit-gen
bin=${CARGO_TARGET_DIR:-target}/release/posaudit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" export spark --out "$work/job" >/dev/null

# Wall seconds of a command.
secs() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for _ in $(seq "$runs"); do
  rm -rf "$work/scan" "$work/prep" "$work/hits" "$work/found"
  s=$(secs "$bin" scan "$dir" --as-of "$as_of" --out "$work/scan" --fail-on never --no-cache --threads "$threads")
  p=$(secs "$bin" prepare "$dir" --as-of "$as_of" --out "$work/prep" --no-cache --threads "$threads")
  j=$(secs python3 "$work/job/posaudit_spark.py" --master "local[$threads]" --prepared "$work/prep" --hits "$work/hits")
  i=$(secs "$bin" import spark --prepared "$work/prep" --hits "$work/hits" --out "$work/found")
  echo "$s $p $j $i" >>"$work/times"
  cmp -s "$work/scan/findings.jsonl" "$work/found/findings.jsonl" || { echo "findings differ" >&2; exit 1; }
done
rows=$(python3 -c "import json,sys; print(sum(f['rows'] for f in json.load(open(sys.argv[1]))['frames'].values()))" "$work/prep/prepared.json")
findings=$(wc -l <"$work/scan/findings.jsonl")
col() { awk -v c="$1" '{ print $c }' "$work/times" | median; }
s=$(col 1); p=$(col 2); j=$(col 3); i=$(col 4)
echo "rows prepared: $rows; findings: $findings (identical); $threads threads; medians of $runs"
echo "posaudit scan (in memory):        $s s"
echo "posaudit prepare:                 $p s"
echo "Spark job, local[$threads]:             $j s"
echo "posaudit import spark:            $i s"
awk -v s="$s" -v p="$p" -v j="$j" -v i="$i" 'BEGIN { printf "Spark path in all: %.2f s, %.1fx the scan; the job alone %.1fx\n", p + j + i, (p + j + i) / s, j / s }'
