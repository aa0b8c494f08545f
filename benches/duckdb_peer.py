#!/usr/bin/env python3
"""DuckDB as a benchmark peer: load a posaudit data folder and run a
documented subset of the rule pack as hand-written SQL (the transaction
rules that translate directly), timing load plus checks and reporting
peak memory. `benches/peer.sh` runs it next to posaudit and a bare polars
read of the same files.

    python3 benches/duckdb_peer.py DIR [THREADS]

The checks (thresholds as in the shipped pack):
  LIM-QR-01   static-QR payer above 500 yuan a day at one merchant
  LIM-TERM-01 single payment above the terminal model's cap
  LIM-VOL-01  a month above 3x the declared volume
  SUS-CARD-01 a card at more than 3 merchants in a day
  SUS-SPLIT-01 3 credit purchases by one card at one merchant in 10 minutes
  SUS-TIME-02 3 purchases by one card or payer on one terminal in 30 minutes
  SUS-REF-01  refunds above 10% of sales in 30 days (floors as the rule's)
  SUS-TIME-01 night share above 20% at a daytime merchant in a month
  SUS-CASH-01 round credit amounts as most of a merchant's credit payments
  SUS-DUP-01  the same card, amount and merchant twice within 2 minutes
  SUS-MCC-01  a payment under another MCC than the merchant's
  FEE-REC-01  a fee other than the contract's (rate by card type, debit cap)
  SUS-UNDER-01 3 payments just under the terminal's cap by one card in a day
"""

import glob
import os
import resource
import sys
import time

import duckdb

CHECKS = {
    "LIM-QR-01": """
        SELECT merchant_id, card_hash, CAST(txn_time AS DATE) AS d, SUM(amount) AS s
        FROM t WHERE entry_mode = 'qr_static' AND txn_type = 'purchase' AND status = 'approved'
        GROUP BY 1, 2, 3 HAVING SUM(amount) > 500""",
    "LIM-TERM-01": """
        SELECT t.txn_id FROM t JOIN a USING (merchant_id) JOIN m ON m.terminal_model = a.terminal_model
        WHERE t.txn_type = 'purchase' AND t.status = 'approved' AND t.amount > m.max_single_txn_amount""",
    "LIM-VOL-01": """
        SELECT t.merchant_id, date_trunc('month', t.txn_time) AS mo, SUM(t.amount) AS s
        FROM t JOIN a USING (merchant_id)
        WHERE t.txn_type = 'purchase' AND t.status = 'approved'
        GROUP BY 1, 2, a.declared_monthly_volume HAVING SUM(t.amount) > 3 * a.declared_monthly_volume""",
    "SUS-CARD-01": """
        SELECT card_hash, CAST(txn_time AS DATE) AS d FROM t
        WHERE txn_type = 'purchase' AND status = 'approved' AND card_hash IS NOT NULL
        GROUP BY 1, 2 HAVING COUNT(DISTINCT merchant_id) > 3""",
    "SUS-SPLIT-01": """
        SELECT * FROM (
          SELECT merchant_id, card_hash, COUNT(*) OVER (PARTITION BY merchant_id, card_hash ORDER BY txn_time
                 RANGE BETWEEN INTERVAL 10 MINUTES PRECEDING AND CURRENT ROW) AS n
          FROM t WHERE payment_method = 'card' AND card_type = 'credit' AND txn_type = 'purchase' AND status = 'approved')
        WHERE n >= 3""",
    "SUS-TIME-02": """
        SELECT * FROM (
          SELECT terminal_sn, card_hash, COUNT(*) OVER (PARTITION BY terminal_sn, card_hash ORDER BY txn_time
                 RANGE BETWEEN INTERVAL 30 MINUTES PRECEDING AND CURRENT ROW) AS n
          FROM t WHERE txn_type = 'purchase' AND status = 'approved' AND card_hash IS NOT NULL)
        WHERE n >= 3""",
    "SUS-REF-01": """
        SELECT * FROM (
          SELECT merchant_id,
            SUM(CASE WHEN txn_type = 'purchase' THEN amount ELSE 0 END) OVER w AS sales,
            SUM(CASE WHEN txn_type = 'refund' THEN amount ELSE 0 END) OVER w AS refunds,
            SUM(CASE WHEN txn_type = 'refund' THEN 1 ELSE 0 END) OVER w AS n
          FROM t WHERE status = 'approved' AND txn_type IN ('purchase', 'refund')
          WINDOW w AS (PARTITION BY merchant_id ORDER BY txn_time RANGE BETWEEN INTERVAL 30 DAYS PRECEDING AND CURRENT ROW))
        WHERE sales >= 5000 AND n >= 2 AND refunds > 0.1 * sales""",
    "SUS-TIME-01": """
        SELECT t.merchant_id, date_trunc('month', t.txn_time) AS mo FROM t JOIN a USING (merchant_id) JOIN c ON c.mcc = a.mcc
        WHERE t.txn_type = 'purchase' AND t.status = 'approved' AND c.daytime
        GROUP BY 1, 2
        HAVING SUM(CASE WHEN hour(t.txn_time) < 5 THEN 1 ELSE 0 END) >= 3
           AND SUM(CASE WHEN hour(t.txn_time) < 5 THEN t.amount ELSE 0 END) >= 1000
           AND SUM(CASE WHEN hour(t.txn_time) < 5 THEN t.amount ELSE 0 END) > 0.2 * SUM(t.amount)""",
    "SUS-CASH-01": """
        SELECT merchant_id FROM t
        WHERE payment_method = 'card' AND card_type = 'credit' AND txn_type = 'purchase' AND status = 'approved'
        GROUP BY 1
        HAVING COUNT(*) >= 10 AND SUM(CASE WHEN amount >= 1000 AND amount % 100 = 0 THEN 1 ELSE 0 END) > 0.5 * COUNT(*)""",
    "SUS-DUP-01": """
        SELECT * FROM (
          SELECT txn_id, COUNT(*) OVER (PARTITION BY merchant_id, card_hash, amount ORDER BY txn_time
                 RANGE BETWEEN INTERVAL 2 MINUTES PRECEDING AND CURRENT ROW) AS n
          FROM t WHERE txn_type = 'purchase' AND status = 'approved' AND card_hash IS NOT NULL)
        WHERE n >= 2""",
    "SUS-MCC-01": """
        SELECT t.txn_id FROM t JOIN a USING (merchant_id) WHERE t.mcc <> a.mcc""",
    "FEE-REC-01": """
        SELECT t.txn_id FROM t JOIN a USING (merchant_id)
        WHERE t.txn_type = 'purchase' AND t.status = 'approved' AND t.fee IS NOT NULL
          AND abs(t.fee - (CASE
                WHEN t.payment_method <> 'card' THEN round(t.amount * a.contract_rate_qr, 2)
                WHEN t.card_type = 'credit' THEN round(t.amount * a.contract_rate_credit, 2)
                ELSE least(round(t.amount * a.contract_rate_debit, 2), coalesce(a.contract_debit_cap, 999999999999.99)) END
              + coalesce(a.contract_fixed_fee, 0))) > 0.01""",
    "SUS-UNDER-01": """
        SELECT t.merchant_id, t.card_hash, CAST(t.txn_time AS DATE) AS d
        FROM t JOIN a USING (merchant_id) JOIN m ON m.terminal_model = a.terminal_model
        WHERE t.txn_type = 'purchase' AND t.status = 'approved'
          AND t.amount >= 0.9 * m.max_single_txn_amount AND t.amount < m.max_single_txn_amount
        GROUP BY 1, 2, 3 HAVING COUNT(*) >= 3""",
}


def main() -> None:
    data = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count()
    rules = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rules", "reference")
    txns = sorted(glob.glob(os.path.join(data, "transactions", "*.csv"))) or sorted(
        glob.glob(os.path.join(data, "transactions*.csv"))
    )
    # Typed Parquet (examples/typed_parquet): the files keep their types.
    parquet = not txns
    if parquet:
        txns = sorted(glob.glob(os.path.join(data, "transactions", "*.parquet"))) or sorted(
            glob.glob(os.path.join(data, "transactions*.parquet"))
        )
    started = time.time()
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    # Money and rates exact, as posaudit holds them.
    money = "{'amount': 'DECIMAL(18,2)', 'fee': 'DECIMAL(18,2)', 'mcc': 'VARCHAR', 'merchant_id': 'VARCHAR'}"
    if parquet:
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet({txns!r})")
    else:
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv({txns!r}, header = true, ignore_errors = true, types = {money})")
    contract = (
        "{'declared_monthly_volume': 'DECIMAL(18,2)', 'contract_rate_debit': 'DECIMAL(18,6)', "
        "'contract_debit_cap': 'DECIMAL(18,2)', 'contract_rate_credit': 'DECIMAL(18,6)', "
        "'contract_rate_qr': 'DECIMAL(18,6)', 'contract_fixed_fee': 'DECIMAL(18,2)', 'mcc': 'VARCHAR', "
        "'merchant_id': 'VARCHAR'}"
    )
    if parquet:
        con.execute(f"CREATE TABLE a AS SELECT * FROM read_parquet('{os.path.join(data, 'applications.parquet')}')")
    else:
        con.execute(
            f"CREATE TABLE a AS SELECT * FROM read_csv('{os.path.join(data, 'applications.csv')}', header = true, "
            f"types = {contract})"
        )
    con.execute(f"CREATE TABLE m AS SELECT * FROM read_csv('{os.path.join(rules, 'terminal_models.csv')}', header = true)")
    con.execute(
        f"CREATE TABLE c AS SELECT * FROM read_csv('{os.path.join(rules, 'mcc.csv')}', header = true, "
        "types = {'mcc': 'VARCHAR'})"
    )
    loaded = time.time()
    counts = {}
    for rule, sql in CHECKS.items():
        counts[rule] = con.execute(f"SELECT COUNT(*) FROM ({sql})").fetchone()[0]
    done = time.time()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = con.execute("SELECT COUNT(*) FROM t").fetchone()[0]
    print(f"duckdb {duckdb.__version__}: {rows} rows, load {loaded - started:.2f} s, "
          f"{len(CHECKS)} checks {done - loaded:.2f} s, total {done - started:.2f} s, peak {peak_mib:.0f} MiB")
    for rule, n in counts.items():
        print(f"  {rule:<13} {n}")


if __name__ == "__main__":
    main()
