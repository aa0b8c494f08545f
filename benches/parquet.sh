#!/usr/bin/env bash
# The same inputs as CSV, as Parquet of text columns (posaudit-gen
# --format parquet) and as Parquet of the contract's types
# (examples/typed_parquet), scanned in memory, interleaved; medians of RUNS
# of wall seconds and peak MiB, and the findings compared (less the source
# line, which differs by a CSV file's header row).
#
#   benches/parquet.sh CSV_DIR TEXT_PARQUET_DIR TYPED_PARQUET_DIR AS_OF
#   RUNS=3 THREADS=2 benches/parquet.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
csv=${1:?usage: benches/parquet.sh CSV_DIR TEXT_PARQUET_DIR TYPED_PARQUET_DIR AS_OF}
text=${2:?}
typed=${3:?}
as_of=${4:?}
runs=${RUNS:-3}
threads=${THREADS:-$(nproc)}
# The same packages as the tests and peer.sh build: any other selection
# turns on other polars features and rebuilds polars (15-40 minutes here).
cargo build --release --quiet --locked -p posaudit -p posaudit-gen
bin=${CARGO_TARGET_DIR:-target}/release/posaudit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() { # name dir -> "seconds mib" appended to $work/name
  /usr/bin/time -f "%e %M" -o "$work/t" "$bin" scan "$2" --as-of "$as_of" --out "$work/out-$1" --fail-on never --no-cache --quiet --threads "$threads"
  awk '{ printf "%.2f %.0f\n", $1, $2 / 1024 }' "$work/t" >>"$work/$1"
}
for _ in $(seq "$runs"); do
  measure csv "$csv"
  measure text "$text"
  measure typed "$typed"
done
median() { sort -n "$work/$1" | awk '{ s[NR] = $1; m[NR] = $2 } END { i = int((NR + 1) / 2); print s[i] " s, " m[i] " MiB" }'; }
strip() { python3 -c "import json,sys; [print(json.dumps({k: v for k, v in json.loads(l).items() if k != 'source'}, sort_keys=True)) for l in open(sys.argv[1])]" "$1"; }
same=yes
for f in text typed; do
  cmp -s <(strip "$work/out-csv/findings.jsonl") <(strip "$work/out-$f/findings.jsonl") || same=no
done
echo "medians of $runs, $threads threads; findings equal across the three: $same"
echo "CSV:            $(median csv)"
echo "Parquet, text:  $(median text)"
echo "Parquet, typed: $(median typed)"
