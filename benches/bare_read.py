#!/usr/bin/env python3
"""The floor for the peer benchmark: a bare read with Python's polars of
the same files a scan reads (every input parsed once, types inferred as
polars does, nothing checked), as the performance issue measured it.

    python3 benches/bare_read.py DIR

Reads DIR/transactions/*.csv (the daily exports together, one schema) and
every *.csv or *.parquet directly in DIR (a single transactions file is one
of those), but not labels.csv, the generator's answer key, which a scan
ignores. Threads: POLARS_MAX_THREADS. Prints the rows read and seconds.
"""

import glob
import os
import sys
import time

import polars as pl


def read(paths):
    if not paths:
        return 0
    if paths[0].endswith(".parquet"):
        return pl.read_parquet(paths).height
    # Long enough to type every column of the contract's files (an id
    # column that is empty for the first thousand rows stays text).
    try:
        # polars' multi-file scan reads the files side by side: 30 daily
        # files of a 10M-row month in 10.8 s on 2 threads, against 20.1 s
        # for the same files read one by one and concatenated.
        return pl.scan_csv(paths, infer_schema_length=100_000).collect().height
    except pl.exceptions.PolarsError:
        # Files whose columns were typed differently (a column empty in one
        # file): one by one, widened to a common type.
        return pl.concat([pl.read_csv(p, infer_schema_length=100_000) for p in paths], how="vertical_relaxed").height


def main():
    folder = sys.argv[1]
    started = time.perf_counter()
    rows = read(sorted(glob.glob(os.path.join(folder, "transactions", "*.csv")))
                + sorted(glob.glob(os.path.join(folder, "transactions", "*.parquet"))))
    for path in sorted(glob.glob(os.path.join(folder, "*.csv")) + glob.glob(os.path.join(folder, "*.parquet"))):
        if os.path.basename(path) != "labels.csv":
            rows += read([path])
    seconds = time.perf_counter() - started
    print(f"polars {pl.__version__} bare read: {rows} rows in {seconds:.2f} s")


if __name__ == "__main__":
    main()
