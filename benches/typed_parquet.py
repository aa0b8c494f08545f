"""Rewrite a generated folder (posaudit-gen) as typed Parquet with Python's
polars: the kind of Parquet a warehouse writes, for benches/peer.sh and
the Parquet rows of the README's tables.

    python3 benches/typed_parquet.py IN_DIR OUT_DIR

Transactions: txn_time a datetime (ms), amount and fee Decimal(18,2),
lat/lon floats, the rest text; one Parquet file per CSV file under
OUT_DIR/transactions. Applications: money Decimal(18,2), rates
Decimal(18,6), the four times datetimes, the install coordinates floats,
as OUT_DIR/applications.parquet (where benches/duckdb_peer.py reads it).
Fees and fee changes are copied as CSV.

examples/typed_parquet.rs does the same through posaudit's own parser
(and leaves out the rows posaudit rejects), but building an example turns
on other polars features and rebuilds polars. This script is for clean,
generated data: its casts are strict, so a value that does not parse
stops it with polars' error.
"""

import glob
import os
import shutil
import sys

import polars as pl

MONEY = [
    "declared_monthly_volume",
    "contract_debit_cap",
    "contract_fixed_fee",
    "contract_sim_fee_yearly",
    "contract_deposit",
    "deposit_refund_threshold",
]
RATES = ["contract_rate_debit", "contract_rate_credit", "contract_rate_qr"]
TIMES = ["submitted_at", "reviewed_at", "contract_signed_at", "installed_at"]


def datetime(name: str) -> pl.Expr:
    return pl.col(name).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ms", strict=True)


def transactions(src: str, dst: str) -> int:
    df = pl.read_csv(src, infer_schema=False).with_columns(
        datetime("txn_time"),
        pl.col("amount").cast(pl.Decimal(18, 2)),
        pl.col("fee").cast(pl.Decimal(18, 2)),
        pl.col("lat").cast(pl.Float64),
        pl.col("lon").cast(pl.Float64),
    )
    df.write_parquet(dst)
    return df.height


def applications(src: str, dst: str) -> int:
    df = pl.read_csv(src, infer_schema=False).with_columns(
        *[pl.col(c).cast(pl.Decimal(18, 2)) for c in MONEY],
        *[pl.col(c).cast(pl.Decimal(18, 6)) for c in RATES],
        *[datetime(c) for c in TIMES],
        pl.col("install_lat").cast(pl.Float64),
        pl.col("install_lon").cast(pl.Float64),
    )
    df.write_parquet(dst)
    return df.height


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.join(dst, "transactions"), exist_ok=True)
    rows = 0
    for path in sorted(glob.glob(os.path.join(src, "transactions", "*.csv"))):
        name = os.path.splitext(os.path.basename(path))[0] + ".parquet"
        rows += transactions(path, os.path.join(dst, "transactions", name))
    apps = applications(os.path.join(src, "applications.csv"), os.path.join(dst, "applications.parquet"))
    for name in ("fees.csv", "fee_changes.csv"):
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    print(f"{rows} transactions and {apps} applications as typed Parquet in {dst}")


if __name__ == "__main__":
    main()
