#!/usr/bin/env bash
# Two posaudit binaries on the same inputs, run in interleaved pairs (A B
# A B ...), so that the machine's drift (these shared machines vary by
# 20% within an hour) falls on both alike. This is how the README's
# before/after figures of one change are measured. Per run: wall and CPU
# seconds, peak MiB, and the read, derived-columns and rules phases from
# `--verbose`; then the medians, and whether the two binaries' findings,
# cases and rejected rows are byte for byte the same (they must be: an
# optimisation changes no finding).
#
#   benches/pairs.sh BIN_A BIN_B DIR AS_OF [scan options...]
#   PAIRS=5 THREADS=2 benches/pairs.sh /tmp/posaudit-before target/release/posaudit /tmp/m10one 2026-11-20
#   benches/pairs.sh A B DIR 2026-11-20 --partitions 8
#
# Keep the binaries outside the target folder (cp target/release/posaudit
# /tmp/posaudit-before) so that a rebuild does not change one mid-run.
# Exits 1 if the outputs differ, 2 if a scan fails. With an even PAIRS the lower median is shown.
set -euo pipefail
a=${1:?usage: benches/pairs.sh BIN_A BIN_B DIR AS_OF [scan options...]}
b=${2:?usage: benches/pairs.sh BIN_A BIN_B DIR AS_OF [scan options...]}
dir=${3:?usage: benches/pairs.sh BIN_A BIN_B DIR AS_OF [scan options...]}
as_of=${4:?usage: benches/pairs.sh BIN_A BIN_B DIR AS_OF [scan options...]}
shift 4
pairs=${PAIRS:-3}
threads=${THREADS:-$(nproc)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One run of binary $1 (label $2): appends "label wall cpu peak read derived rules partitions"
# ("-" for a phase the run does not have).
run() {
  local bin=$1 label=$2 out=$work/out-$2
  shift 2
  rm -rf "$out"
  local start end
  start=$(date +%s.%N)
  # Exit 1 (findings at or above --fail-on) is a scan's normal outcome here.
  local rc=0
  /usr/bin/time -f "%U %S %M" -o "$work/time" "$bin" scan "$dir" --as-of "$as_of" --no-cache \
    --threads "$threads" --verbose --out "$out" "$@" >"$work/log-$label" 2>&1 || rc=$?
  if [ "$rc" -gt 1 ]; then
    echo "$label ($bin) exited $rc; the end of its output:" >&2
    tail -5 "$work/log-$label" >&2
    exit 2
  fi
  end=$(date +%s.%N)
  # "read inputs: 8.91 s (...)": the number before the first "s".
  phase() {
    awk -v p="$1" 'index($0, p) == 1 { for (i = 1; i <= NF; i++) if ($i == "s") { print $(i-1); found = 1; exit } }
                   END { if (!found) print "-" }' "$work/log-$label"
  }
  read -r user sys kb < <(tail -1 "$work/time")
  printf '%s %.2f %.1f %.0f %s %s %s %s\n' "$label" "$(echo "$end - $start" | bc)" "$(echo "$user + $sys" | bc)" \
    "$(echo "$kb / 1024" | bc)" "$(phase 'read inputs:')" "$(phase 'derived columns')" "$(phase 'rules:')" \
    "$(phase 'partitions:')" >>"$work/runs"
}

printf '%-4s %8s %8s %9s %7s %8s %7s %7s\n' run wall_s cpu_s peak_mib read_s derive_s rules_s parts_s
for i in $(seq 1 "$pairs"); do
  for side in A B; do
    if [ $side = A ]; then run "$a" A "$@"; else run "$b" B "$@"; fi
    tail -1 "$work/runs" | awk '{ printf "%-4s %8s %8s %9s %7s %8s %7s %7s\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
  done
done

echo
echo "medians of $pairs (A: $a, B: $b), each column on its own:"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for side in A B; do
  col() { awk -v s=$side -v c="$1" '$1 == s { print $c }' "$work/runs" | median; }
  printf '%s  wall %s s  cpu %s s  peak %s MiB  read %s s  derived %s s  rules %s s  partitions %s s\n' \
    $side "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" "$(col 7)" "$(col 8)"
done

same=0
for f in findings.jsonl cases.jsonl rejected.csv; do
  if [ -e "$work/out-A/$f" ] || [ -e "$work/out-B/$f" ]; then
    if cmp -s "$work/out-A/$f" "$work/out-B/$f"; then
      echo "$f: identical"
    else
      echo "$f: DIFFERENT"
      same=1
    fi
  fi
done
exit $same
