#!/usr/bin/env bash
# One merchant with 200,000 transactions in the month, against the same
# rows spread over 2,000 ordinary merchants, on top of a generated month.
#
#   benches/giant.sh BASE_DIR AS_OF [WORK]
#   BIN=/tmp/posaudit RUNS=3 THREADS=2 benches/giant.sh BASE_DIR AS_OF [WORK]
#
# BASE_DIR is a generated month (posaudit-gen ... --start 2026-10-01 --days
# 30). The script generates the giant (one merchant, 6,667 transactions a
# day for 30 days: 200,010) and the spread (2,000 merchants, the same
# count), adds each to BASE with benches/add_merchants.py, and scans the
# three in memory (release build, --no-cache, RUNS runs each, interleaved;
# THREADS threads). It prints median wall time and peak RSS, and the
# giant's and the spread's time as a ratio of the base's, beside the share
# of rows they add. Findings of each run are compared across its repeats.
set -euo pipefail
base=${1:?BASE_DIR}
as_of=${2:?AS_OF}
work=${3:-/tmp/posaudit-giant}
runs=${RUNS:-3}
threads=${THREADS:-2}
here=$(cd "$(dirname "$0")" && pwd)
# The same packages as the tests and peer.sh build: any other selection
# turns on other polars features and rebuilds polars (15-40 minutes here).
# BIN=/tmp/posaudit (and GEN, default posaudit-gen beside BIN): binaries
# built before, no build (as peer.sh).
if [ -n "${BIN:-}" ]; then
  bin=$BIN
  gen=${GEN:-$(dirname "$BIN")/posaudit-gen}
else
  cargo build --release --quiet --locked -p posaudit -p posaudit-gen
  target=${CARGO_TARGET_DIR:-$here/../target}
  bin=$target/release/posaudit
  gen=$target/release/posaudit-gen
fi
mkdir -p "$work"
start=${START:-2026-10-01}
[ -d "$work/giant" ] || "$gen" --out "$work/giant" --merchants 1 --days 30 --txns-per-day 6667 --seed 99 --violations 0 --start "$start" >/dev/null
[ -d "$work/spread" ] || "$gen" --out "$work/spread" --merchants 2000 --days 30 --txns-per-day 6667 --seed 99 --violations 0 --start "$start" >/dev/null
[ -d "$work/base+giant" ] || python3 "$here/add_merchants.py" "$base" "$work/giant" "$work/base+giant"
[ -d "$work/base+spread" ] || python3 "$here/add_merchants.py" "$base" "$work/spread" "$work/base+spread"

scan() { # name dir
  /usr/bin/time -f "%e %M" -o "$work/t" "$bin" scan "$2" --as-of "$as_of" --out "$work/out-$1" \
    --fail-on never --no-cache --quiet --threads "$threads"
  echo "$1 $(cat "$work/t")" >>"$work/times"
  if [ -f "$work/first-$1.jsonl" ]; then cmp -s "$work/first-$1.jsonl" "$work/out-$1/findings.jsonl" || { echo "$1: findings differ between runs"; exit 1; }
  else cp "$work/out-$1/findings.jsonl" "$work/first-$1.jsonl"; fi
}
rm -f "$work/times" "$work"/first-*.jsonl
for _ in $(seq "$runs"); do
  scan base "$base"
  scan giant "$work/base+giant"
  scan spread "$work/base+spread"
done
rows() { cat "$1"/transactions/*.csv | grep -vc '^txn_id,'; }
python3 - "$work/times" "$(rows "$base")" "$(rows "$work/giant")" "$(rows "$work/spread")" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    name, wall, kb = line.split()
    times.setdefault(name, []).append((float(wall), int(kb)))
base_rows, giant_rows, spread_rows = map(int, sys.argv[2:5])
med = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v) / 1024) for k, v in times.items()}
print(f"| data | transactions | wall (median of {len(times['base'])}) | peak RSS | time / base | rows / base |")
print("|---|---:|---:|---:|---:|---:|")
for name, rows in (("base", base_rows), ("giant", base_rows + giant_rows), ("spread", base_rows + spread_rows)):
    w, m = med[name]
    print(f"| {name} | {rows:,} | {w:.2f} s | {m:,.0f} MiB | {w / med['base'][0]:.2f} | {rows / base_rows:.2f} |")
PY
