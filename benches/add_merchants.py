#!/usr/bin/env python3
"""Add one generated data set's merchants to another's, for benches/giant.sh.

    add_merchants.py BASE EXTRA OUT

OUT gets BASE's files with EXTRA's rows appended (transactions by day file,
applications, fees, fee changes, labels). EXTRA's identifiers are renamed so
that they cannot meet BASE's: merchant numbers start 829 instead of 822
(the MCC inside them stays), and transaction, terminal, application and
charge ids get another first letter. Nothing else changes: a merchant's
rows are the generator's.
"""
import csv
import os
import shutil
import sys


def rename(row, header):
    out = dict(zip(header, row))
    for col in ("merchant_id",):
        if out.get(col, "").startswith("822"):
            out[col] = "829" + out[col][3:]
    for col, old, new in (
        ("txn_id", "T", "G"),
        ("original_txn_id", "T", "G"),
        ("terminal_sn", "SN", "SQ"),
        ("application_id", "APP", "APQ"),
        ("charge_id", "C", "K"),
    ):
        v = out.get(col)
        if v and v.startswith(old):
            out[col] = new + v[len(old):]
    return [out[h] for h in header]


def append(src, dst):
    """Append src's rows (header dropped) to dst, or copy it if dst is new."""
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    exists = os.path.exists(dst)
    if exists:
        with open(dst, newline="", encoding="utf-8") as f:
            if next(csv.reader(f)) != header:
                sys.exit(f"{dst}: the header differs from {src}'s")
    with open(dst, "a", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        if not exists:
            w.writerow(header)
        for r in body:
            w.writerow(rename(r, header))


def main():
    base, extra, out = sys.argv[1:4]
    if os.path.exists(out):
        shutil.rmtree(out)
    shutil.copytree(base, out)
    for name in ("applications.csv", "fees.csv", "fee_changes.csv", "labels.csv"):
        if os.path.exists(os.path.join(extra, name)):
            append(os.path.join(extra, name), os.path.join(out, name))
    tx = os.path.join(extra, "transactions")
    for name in sorted(os.listdir(tx)):
        append(os.path.join(tx, name), os.path.join(out, "transactions", name))


if __name__ == "__main__":
    main()
