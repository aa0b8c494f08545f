#!/usr/bin/env bash
# Scale benchmark. Generates 1M and 10M transactions (100,000 merchants,
# 30 daily files), scans each with the full shipped rule pack as CSV and as
# Parquet, and prints wall time, rows per second and peak memory next to a
# bare polars read of the same files (the floor: every input is parsed once).
#
#   benches/scale.sh [WORKDIR]          default WORKDIR: /tmp/posaudit-scale
#   SIZES="1 10" FORMATS="csv parquet" THREADS=2 benches/scale.sh
#
# Generated data is kept in WORKDIR and reused on the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-${TMPDIR:-/tmp}/posaudit-scale}
sizes=${SIZES:-"1 10"}
formats=${FORMATS:-"csv parquet"}
threads=${THREADS:-$(nproc)}
mkdir -p "$work"

cargo build --release --quiet --bin posaudit --example bare_read
target=${CARGO_TARGET_DIR:-target}
bin=$target/release/posaudit
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

printf '%s\n' "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, threads=$threads"
printf '%-5s %-8s %12s %10s %10s %10s %12s %10s %10s\n' size format rows bare_s bare_MiB scan_s rows_per_s scan_MiB scan/bare
for m in $sizes; do
  per_day=$(( m * 1000000 / 30 ))
  for fmt in $formats; do
    dir=$work/${m}M-$fmt
    if [ ! -f "$dir/.complete" ]; then
      rm -rf "$dir"
      gen_s=$( { /usr/bin/time -f '%e' "$bin" gen --merchants 100000 --days 30 --txns-per-day "$per_day" \
        --seed 7 --violations 0.02 --format "$fmt" --start 2026-10-01 --out "$dir" >/dev/null; } 2>&1 )
      echo "generated $dir in ${gen_s} s" >&2
      touch "$dir/.complete"
    fi
    rows=$(( per_day * 30 ))
    read -r bare_s bare_mib < <(measure "$bare" "$dir")
    read -r scan_s scan_mib < <(measure "$bin" scan "$dir" --as-of 2026-11-20 --fail-on never --quiet \
      --threads "$threads" --out "$work/out-${m}M-$fmt")
    printf '%-5s %-8s %12d %10.2f %10d %10.2f %12.0f %10d %10.2f\n' "${m}M" "$fmt" "$rows" "$bare_s" "$bare_mib" \
      "$scan_s" "$(echo "$rows / $scan_s" | bc -l)" "$scan_mib" "$(echo "$scan_s / $bare_s" | bc -l)"
  done
done
