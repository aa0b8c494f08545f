#!/usr/bin/env bash
# Scale benchmark. Generates 1M and 10M transactions (100,000 merchants,
# 30 daily files), scans each with the full shipped rule pack as CSV and as
# Parquet, and prints wall time, rows per second and peak memory next to a
# bare polars read of the same files (the floor: every input is parsed once).
# Each size is also scanned with --partitions, and the partitioned findings
# are compared with the in-memory findings byte for byte.
#
#   benches/scale.sh [WORKDIR]          default WORKDIR: /tmp/posaudit-scale
#   SIZES="1 10" FORMATS="csv parquet" THREADS=2 PARTITIONS=8 benches/scale.sh
#   SIZES=100 FORMATS=csv benches/scale.sh   # 100M rows, 1,000,000 merchants:
#                                            # about 19 GB of CSV, partitioned only
#
# Sizes are millions of rows. Up to 10M the data has 100,000 merchants; above,
# 10,000 merchants per million rows. Sizes of 100M and more run partitioned
# only (PARTITIONS x size / 10 partitions), since in memory they would not
# fit this machine. Generated data is kept in WORKDIR and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-${TMPDIR:-/tmp}/posaudit-scale}
sizes=${SIZES:-"1 10"}
formats=${FORMATS:-"csv parquet"}
threads=${THREADS:-$(nproc)}
parts=${PARTITIONS:-8}
mkdir -p "$work"

cargo build --release --quiet --bin posaudit --example bare_read
cargo build --release --quiet -p posaudit-gen
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/posaudit
gen=$target/release/posaudit-gen
bare=$target/release/examples/bare_read

# Run a command under /usr/bin/time -v; print "seconds peak_mib".
measure() {
  local log
  log=$(mktemp)
  POLARS_MAX_THREADS=$threads /usr/bin/time -v "$@" >/dev/null 2>"$log" || { cat "$log" >&2; rm -f "$log"; return 1; }
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = t[n] + (n > 1 ? t[n-1] * 60 : 0) + (n > 2 ? t[n-2] * 3600 : 0) }
              /Maximum resident set size/ { kb = $2 }
              END { printf "%.2f %.0f\n", s, kb / 1024 }' "$log"
  rm -f "$log"
}

row() { # size format mode rows bare_s bare_mib scan_s scan_mib check
  printf '%-5s %-8s %-14s %12d %10s %10s %10.2f %12.0f %10d %10s %s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" \
    "$(echo "$4 / $7" | bc -l)" "$8" "$( [ "$5" = - ] && echo - || printf '%.2f' "$(echo "$7 / $5" | bc -l)")" "$9"
}

printf '%s\n' "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, threads=$threads"
printf '%-5s %-8s %-14s %12s %10s %10s %10s %12s %10s %10s %s\n' size format mode rows bare_s bare_MiB scan_s rows_per_s scan_MiB scan/bare findings
for m in $sizes; do
  per_day=$(( m * 1000000 / 30 ))
  merchants=$(( m <= 10 ? 100000 : m * 10000 ))
  for fmt in $formats; do
    dir=$work/${m}M-$fmt
    if [ ! -f "$dir/.complete" ]; then
      rm -rf "$dir"
      gen_s=$( { /usr/bin/time -f '%e' "$gen" --tidy --merchants "$merchants" --days 30 --txns-per-day "$per_day" \
        --seed 7 --violations 0.02 --format "$fmt" --start 2026-10-01 --out "$dir" >/dev/null; } 2>&1 )
      echo "generated $dir in ${gen_s} s" >&2
      touch "$dir/.complete"
    fi
    rows=$(( per_day * 30 ))
    scan=("$bin" scan "$dir" --as-of 2026-11-20 --fail-on never --quiet --threads "$threads")
    memory=$work/out-${m}M-$fmt
    if [ "$m" -lt 100 ]; then
      read -r bare_s bare_mib < <(measure "$bare" "$dir")
      read -r scan_s scan_mib < <(measure "${scan[@]}" --out "$memory")
      row "${m}M" "$fmt" "in memory" "$rows" "$bare_s" "$bare_mib" "$scan_s" "$scan_mib" \
        "$(wc -l < "$memory/findings.jsonl")"
    else
      bare_s=- bare_mib=-
    fi
    n=$(( m < 10 ? parts : parts * m / 10 ))
    split=$work/out-${m}M-$fmt-p$n
    read -r scan_s scan_mib < <(measure "${scan[@]}" --partitions "$n" --out "$split")
    check=$(wc -l < "$split/findings.jsonl")
    if [ -f "$memory/findings.jsonl" ] && [ "$m" -lt 100 ]; then
      if cmp -s "$memory/findings.jsonl" "$split/findings.jsonl"; then check="$check, equal"; else check="$check, DIFFERENT"; fi
    fi
    row "${m}M" "$fmt" "$n partitions" "$rows" "$bare_s" "$bare_mib" "$scan_s" "$scan_mib" "$check"
  done
done
