#!/usr/bin/env bash
# posaudit next to its peers on the same files, in one run: a bare read
# with Python's polars (the floor: every input parsed once;
# benches/bare_read.py), DuckDB loading the files and
# running 13 of the pack's transaction checks as hand-written SQL
# (benches/duckdb_peer.py), and posaudit's full pack in memory. Medians of
# RUNS runs each; wall seconds, peak MiB, and posaudit as a ratio of both.
#
#   benches/peer.sh DIR            a folder posaudit-gen wrote (or any inputs)
#   RUNS=3 THREADS=2 benches/peer.sh DIR
#   WARMUP=0 benches/peer.sh DIR   no uncounted first run (default 1)
#   BIN=/tmp/posaudit benches/peer.sh DIR   a binary built before (no build)
#
# Needs `pip install polars duckdb` and a release build: the script builds
# the scanner with the workspace's features (`-p posaudit -p posaudit-gen`,
# which the tests' build shares) unless BIN names one. The bare read used
# to be a Rust example (examples/bare_read.rs, still there); building it
# turned on other polars features and rebuilt polars, 38 minutes here.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: benches/peer.sh DIR}
runs=${RUNS:-3}
warmup=${WARMUP:-1}
threads=${THREADS:-$(nproc)}

if [ -n "${BIN:-}" ]; then
  bin=$BIN
else
  cargo build --release --quiet --locked -p posaudit -p posaudit-gen
  bin=${CARGO_TARGET_DIR:-target}/release/posaudit
fi
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

read -r bare_s bare_mib < <(median python3 benches/bare_read.py "$dir")
read -r duck_s duck_mib < <(median python3 benches/duckdb_peer.py "$dir" "$threads")
read -r scan_s scan_mib < <(median "$bin" scan "$dir" --as-of 2026-11-20 --fail-on never --quiet --no-cache --threads "$threads" --out "$out/scan")
rows=$(python3 -c 'import json, sys; print(sum(f["rows_read"] for f in json.load(open(sys.argv[1]))["inputs"]))' "$out/scan/manifest.json")

printf 'machine: %s cores, %s GiB, threads=%s, medians of %s; %s input rows\n' \
  "$(nproc)" "$(free -g | awk '/Mem:/ {print $2}')" "$threads" "$runs" "$rows"
printf '| run | wall s | peak MiB | posaudit / this |\n|---|---:|---:|---:|\n'
printf '| bare polars read (Python, polars %s) | %s | %s | %.2f |\n' "$(python3 -c 'import polars; print(polars.__version__)')" "$bare_s" "$bare_mib" "$(echo "$scan_s / $bare_s" | bc -l)"
printf '| DuckDB %s: load + 13 checks | %s | %s | %.2f |\n' "$(python3 -c 'import duckdb; print(duckdb.__version__)')" "$duck_s" "$duck_mib" "$(echo "$scan_s / $duck_s" | bc -l)"
printf '| posaudit scan, full pack (%s rules) | %s | %s | 1.00 |\n' \
  "$(grep -o '"count": [0-9]*' "$out/scan/manifest.json" | head -1 | grep -o '[0-9]*')" "$scan_s" "$scan_mib"
