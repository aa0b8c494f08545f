#!/usr/bin/env bash
# The scheduler's daily run: today's scan over the last 30 daily files
# (`--window 30d`) with yesterday's run having filled the parse cache (29
# of the 30 files cached, one new), against the same run cold (an empty
# cache: parse and store every file) and without the cache (`--no-cache`:
# parse every file, store nothing). Runs are interleaved; medians of RUNS.
#
#   benches/daily.sh                     10,000 merchants, 33,334 txns/day, 31 days
#   MERCHANTS=2000 PER_DAY=4000 RUNS=5 benches/daily.sh
#
# Prints wall seconds and peak MiB of each, and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
merchants=${MERCHANTS:-10000}
per_day=${PER_DAY:-33334}
runs=${RUNS:-3}

cargo build --release --quiet
cargo build --quiet -p posaudit-gen
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/posaudit
gen=$target/debug/posaudit-gen
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$gen" --out "$work/data" --merchants "$merchants" --days 31 --txns-per-day "$per_day" \
  --seed 3131 --violations 0.05 --start 2026-10-01 >/dev/null
echo "data: $(du -sh "$work/data/transactions" | cut -f1) in $(ls "$work/data/transactions" | wc -l) transaction files"

# Yesterday: the 30 days ending 10-30 fill the cache, before today's file
# (10-31) existed.
mv "$work/data/transactions/2026-10-31.csv" "$work/today.csv"
"$bin" scan "$work/data" --as-of 2026-10-30 --window 30d --fail-on never -q \
  --out "$work/yesterday" --cache-dir "$work/yesterday-cache"
mv "$work/today.csv" "$work/data/transactions/2026-10-31.csv"

measure() {
  local log
  log=$(mktemp)
  /usr/bin/time -v "$@" >/dev/null 2>"$log" || { cat "$log" >&2; rm -f "$log"; return 1; }
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = t[n] + (n > 1 ? t[n-1] * 60 : 0) }
              /Maximum resident set size/ { kb = $2 }
              END { printf "%.2f %.0f\n", s, kb / 1024 }' "$log"
  rm -f "$log"
}

today=(scan "$work/data" --as-of 2026-10-31 --window 30d --fail-on never -q)
: >"$work/warm" ; : >"$work/cold" ; : >"$work/none"
for i in $(seq "$runs"); do
  rm -rf "$work/c"; cp -r "$work/yesterday-cache" "$work/c"
  measure "$bin" "${today[@]}" --out "$work/o-warm" --cache-dir "$work/c" >>"$work/warm"
  rm -rf "$work/c"
  measure "$bin" "${today[@]}" --out "$work/o-cold" --cache-dir "$work/c" >>"$work/cold"
  measure "$bin" "${today[@]}" --out "$work/o-none" --no-cache >>"$work/none"
done
cmp "$work/o-warm/findings.jsonl" "$work/o-none/findings.jsonl"
cmp "$work/o-cold/findings.jsonl" "$work/o-none/findings.jsonl"
echo "cached run: $(grep -o '"hits": [0-9]*' "$work/o-warm/manifest.json"), $(grep -o '"misses": [0-9]*' "$work/o-warm/manifest.json") (files)"

med() { sort -n "$1" | awk '{ s[NR] = $1; m[NR] = $2 } END { i = int((NR + 1) / 2); print s[i], m[i] }'; }
read -r ws wm < <(med "$work/warm")
read -r cs cm < <(med "$work/cold")
read -r ns nm < <(med "$work/none")
printf '%-34s %8s %9s\n' run seconds peak_MiB
printf '%-34s %8s %9s\n' "29 of 30 files cached" "$ws" "$wm"
printf '%-34s %8s %9s\n' "cold (parse and store all 30)" "$cs" "$cm"
printf '%-34s %8s %9s\n' "no cache (parse all 30)" "$ns" "$nm"
awk -v w="$ws" -v c="$cs" -v n="$ns" 'BEGIN { printf "cached / no cache = %.2f, cold / no cache = %.2f\n", w / n, c / n }'
