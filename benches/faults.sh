#!/usr/bin/env bash
# How much memory a scan has the kernel fault in, phase by phase: the
# system's count of transparent huge pages faulted in (/proc/vmstat
# `thp_fault_alloc`, 2 MiB each) sampled every 0.1 s while the command
# runs, cut at the phase times `--verbose` prints, and the run's wall,
# user and system seconds and peak.
#
#   benches/faults.sh BIN scan DIR --as-of 2026-11-05 --no-cache --verbose [...]
#
# The counter is the whole system's: run nothing else meanwhile. Without
# `--verbose` only the total is printed. Session 51, the 10M-row month in
# one CSV, 2 threads: read 2.9-3.0 GiB, derived columns 4.5-4.9 GiB,
# rules 6.3-8.7 GiB, 14.5-16.5 GiB in all for a peak of 3.7 GiB; with
# MIMALLOC_PURGE_DELAY=-1 (freed memory never handed back) 6.1-6.6 GiB in
# all, at a peak of 6.2-6.7 GiB, and no faster (README, session 51).
set -euo pipefail
[ $# -ge 1 ] || { sed -n '2,16p' "$0"; exit 2; }
[ -r /proc/vmstat ] || { echo "faults.sh: needs /proc/vmstat (Linux)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
( while true; do
    echo "$(date +%s.%N) $(awk '/^thp_fault_alloc /{print $2}' /proc/vmstat)"
    sleep 0.1
  done ) > "$work/samples" &
sampler=$!
start=$(date +%s.%N)
rc=0
/usr/bin/time -f "TIME %e %U %S %M" "$@" > /dev/null 2> "$work/err" || rc=$?
end=$(date +%s.%N)
sleep 0.2
kill "$sampler"
wait "$sampler" 2>/dev/null || true
if [ "$rc" -ge 2 ]; then
  cat "$work/err" >&2
  exit "$rc"
fi

python3 - "$end" "$work/samples" "$work/err" <<'PY'
import re, sys
end = float(sys.argv[1])
samples = [tuple(map(float, l.split())) for l in open(sys.argv[2]) if len(l.split()) == 2]
err = open(sys.argv[3]).read()
def count_at(t):
    c = samples[0][1]
    for when, n in samples:
        if when <= t:
            c = n
    return c
mib = lambda pages: int(pages * 2)
phases = [("read", r"^read inputs: ([0-9.]+) s"), ("derived", r"^derived columns and joins: ([0-9.]+) s"),
          ("rules", r"^rules: ([0-9.]+) s"), ("outputs", r"^triage, cases and outputs: ([0-9.]+) s")]
found = [(name, float(m.group(1))) for name, p in phases if (m := re.search(p, err, re.M))]
wall, user, system, peak_kb = re.search(r"^TIME (\S+) (\S+) (\S+) (\S+)", err, re.M).groups()
print(f"wall {wall} s, user {user} s, system {system} s, peak {int(peak_kb) // 1024} MiB")
if len(found) == len(phases):
    # The phases run back to back and end with the run; the time before
    # the first (loading the rules) is what is left over.
    at = end - sum(d for _, d in found)
    for name, took in found:
        print(f"  {name:8} {took:6.2f} s  faulted {mib(count_at(at + took) - count_at(at)):6d} MiB in huge pages")
        at += took
print(f"  all               faulted {mib(samples[-1][1] - samples[0][1]):6d} MiB in huge pages")
PY
