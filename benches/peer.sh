#!/usr/bin/env bash
# posaudit next to its peers on the same files, in one run: a bare polars
# read (the floor: every input parsed once), DuckDB loading the files and
# running 13 of the pack's transaction checks as hand-written SQL
# (benches/duckdb_peer.py), and posaudit's full pack in memory. Medians of
# RUNS runs each; wall seconds, peak MiB, and posaudit as a ratio of both.
#
#   benches/peer.sh DIR            a folder posaudit-gen wrote (or any inputs)
#   RUNS=3 THREADS=2 benches/peer.sh DIR
#   WARMUP=0 benches/peer.sh DIR   no uncounted first run (default 1)
#
# Needs a release build (the script builds it) and `pip install duckdb`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: benches/peer.sh DIR}
runs=${RUNS:-3}
warmup=${WARMUP:-1}
threads=${THREADS:-$(nproc)}

cargo build --release --quiet --bin posaudit --example bare_read
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/posaudit
bare=$target/release/examples/bare_read
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# "seconds peak_mib" of one run under /usr/bin/time -v.
measure() {
  local log
  log=$(mktemp)
  POLARS_MAX_THREADS=$threads /usr/bin/time -v "$@" >/dev/null 2>"$log" || { cat "$log" >&2; rm -f "$log"; return 1; }
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = t[n] + (n > 1 ? t[n-1] * 60 : 0) }
              /Maximum resident set size/ { kb = $2 }
              END { printf "%.2f %.0f\n", s, kb / 1024 }' "$log"
  rm -f "$log"
}

# Median of RUNS measurements: "seconds peak_mib", after WARMUP runs that
# are not counted. On these virtual machines the first run after a pause
# pays for the host backing fresh memory (reading 10M rows of Parquet: 9 s
# cold, 3-4 s warm, the kernel zeroing pages), whichever tool runs it.
median() {
  for _ in $(seq "$warmup"); do measure "$@" >/dev/null; done
  for _ in $(seq "$runs"); do measure "$@"; done | sort -n | awk '{ s[NR] = $1; m[NR] = $2 } END { i = int((NR + 1) / 2); print s[i], m[i] }'
}

read -r bare_s bare_mib < <(median "$bare" "$dir")
read -r duck_s duck_mib < <(median python3 benches/duckdb_peer.py "$dir" "$threads")
read -r scan_s scan_mib < <(median "$bin" scan "$dir" --as-of 2026-11-20 --fail-on never --quiet --no-cache --threads "$threads" --out "$out/scan")
rows=$(python3 -c 'import json, sys; print(sum(f["rows_read"] for f in json.load(open(sys.argv[1]))["inputs"]))' "$out/scan/manifest.json")

printf 'machine: %s cores, %s GiB, threads=%s, medians of %s; %s input rows\n' \
  "$(nproc)" "$(free -g | awk '/Mem:/ {print $2}')" "$threads" "$runs" "$rows"
printf '| run | wall s | peak MiB | posaudit / this |\n|---|---:|---:|---:|\n'
printf '| bare polars read | %s | %s | %.2f |\n' "$bare_s" "$bare_mib" "$(echo "$scan_s / $bare_s" | bc -l)"
printf '| DuckDB: load + 13 checks | %s | %s | %.2f |\n' "$duck_s" "$duck_mib" "$(echo "$scan_s / $duck_s" | bc -l)"
printf '| posaudit scan, full pack (%s rules) | %s | %s | 1.00 |\n' \
  "$(grep -o '"count": [0-9]*' "$out/scan/manifest.json" | head -1 | grep -o '[0-9]*')" "$scan_s" "$scan_mib"
