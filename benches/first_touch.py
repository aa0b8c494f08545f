#!/usr/bin/env python3
"""How fast this machine hands a process fresh memory.

Maps SIZE MiB of anonymous memory (with and without transparent huge
pages), writes a byte to each 4 KiB page (the kernel zeroes each page, or
each 2 MiB huge page, as it is first written) and reports GB/s; three
rounds back to back, then again after PAUSE seconds idle. On a virtual
machine whose kernel gives free memory back to the host (virtio free page
reporting: /sys/module/page_reporting), a round right after another reuses
pages the guest still holds, and a round after a pause waits for the host
to back every page again.

    python3 benches/first_touch.py [SIZE_MIB] [PAUSE_S]

Session 51 (this project's machine): 2,048 MiB in huge pages, 0.46-1.00
GB/s for the first round after a pause, 7.6-11 GB/s for the next two;
in 4 KiB pages 1.0-2.5 GB/s throughout. A scan that frees and faults in 15 GB
over its run (benches/faults.sh) pays the first figure for some of it and
the second for the rest, which is why the same binary's wall time varies
by a fifth from run to run here.
"""
import mmap
import sys
import time


def round_gbps(size, huge):
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if huge and hasattr(mmap, "MADV_HUGEPAGE"):
        m.madvise(mmap.MADV_HUGEPAGE)
    t = time.perf_counter()
    for off in range(0, size, 4096):
        m[off] = 1
    took = time.perf_counter() - t
    m.close()
    return size / took / 1e9


def main():
    size = int(sys.argv[1] if len(sys.argv) > 1 else 2048) << 20
    pause = float(sys.argv[2] if len(sys.argv) > 2 else 5)
    reported = "/sys/module/page_reporting/parameters/reported_kib"
    try:
        with open(reported) as f:
            print(f"free page reporting: {int(f.read()) >> 20} GiB given back to the host since boot")
    except OSError:
        print("free page reporting: not on this kernel")
    for huge in (True, False):
        for attempt in ("after a pause", "after a pause, again"):
            time.sleep(pause)
            rates = [round_gbps(size, huge) for _ in range(3)]
            print(f"{'huge' if huge else '4 KiB'} pages, {size >> 20} MiB, {attempt}: "
                  + ", ".join(f"{r:.2f}" for r in rates) + " GB/s")


if __name__ == "__main__":
    main()
