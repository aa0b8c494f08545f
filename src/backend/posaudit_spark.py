#!/usr/bin/env python3
"""posaudit's rule pack on Apache Spark: the generic driver of a job written
by `posaudit export spark`.

It registers the Parquet files `posaudit prepare` wrote as views named after
their input (transactions, applications, fees, fee_changes), runs each rule's
query from sql/ (listed in rules.json), and writes each rule's hits as Parquet
in --hits, with status.json saying which rules ran, which were skipped (the
data lacks a column or an input they need) and which failed, and why. Turn the
hits into findings with `posaudit import spark`.

    spark-submit posaudit_spark.py --prepared prepared/ --hits hits/
    python3 posaudit_spark.py --master 'local[*]' --prepared prepared/ --hits hits/

Nothing here is specific to a rule: the queries are generated from the
compiled rules, and this file is the same for every pack.
"""

import argparse
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import SparkSession

try:  # pyspark 3.4 and later
    from pyspark.errors import AnalysisException
except ImportError:  # pragma: no cover
    from pyspark.sql.utils import AnalysisException


def fill(rule, columns):
    """The rule's query with the run's date and the optional columns the
    view has written at their marks."""
    sql = rule["sql"]
    present = [c for c in rule["optional"] if c in columns]
    for mark, template in rule["fills"].items():
        sql = sql.replace(mark, "".join(", " + template.replace("{c}", c) for c in present))
    return sql


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prepared", required=True, nargs="+",
                    help="the folder posaudit prepare wrote, or one per partition (prepare --partition K/N)")
    ap.add_argument("--hits", required=True, help="where to write each rule's hits and status.json")
    ap.add_argument("--as-of", help="the date expiry and age checks use (default: the one prepare used)")
    ap.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    ap.add_argument("--only", nargs="*", help="run these rules only")
    ap.add_argument("--parallel", type=int, default=4,
                    help="rules submitted at once (Spark runs their jobs side by side; default 4)")
    args = ap.parse_args(argv)

    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "rules.json"), encoding="utf-8") as fh:
        job = json.load(fh)
    manifests = []
    for d in args.prepared:
        with open(os.path.join(d, "prepared.json"), encoding="utf-8") as fh:
            manifests.append(json.load(fh))
    if len({m["as_of"] for m in manifests}) > 1 or len({m["rules_digest"] for m in manifests}) > 1:
        sys.exit("the prepared folders were written with different --as-of dates or rule packs")
    if len(manifests) > 1:
        parts = sorted(m.get("partition") or "" for m in manifests)
        n = {p.split("/")[1] for p in parts if p}
        if "" in parts or len(n) != 1 or len(parts) != int(n.pop()) or len(set(parts)) != len(parts):
            sys.exit(f"the prepared folders are not the partitions 0..N-1 of one split: {parts}")
    if manifests[0]["rules_digest"] != job.get("rules_digest"):
        # The digest covers the rule files' paths too: the same pack read
        # from another folder differs, so this is a warning.
        print("warning: the prepared files were written for another rule pack (or the same pack at another "
              "path): columns a rule needs may be missing", file=sys.stderr)
    as_of = args.as_of or manifests[0]["as_of"]
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", as_of):
        sys.exit(f"--as-of {as_of!r} is not a date (YYYY-MM-DD)")

    builder = SparkSession.builder.appName("posaudit")
    # Times are naive local times: read and compute them without a zone.
    builder = builder.config("spark.sql.session.timeZone", "UTC").config("spark.ui.showConsoleProgress", "false")
    # Without --master: spark-submit's, or PySpark's own default (local[*]).
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    # A rule that fails is reported in status.json; Spark's own log of it
    # (a stack trace per failure) is noise here.
    spark.sparkContext.setLogLevel("FATAL")

    views = {}
    for name in sorted({n for m in manifests for n in m["frames"]}):
        paths = [os.path.join(d, m["frames"][name]["file"]) for d, m in zip(args.prepared, manifests) if name in m["frames"]]
        df = spark.read.parquet(*paths)
        df.createOrReplaceTempView(name)
        views[name] = set(df.columns)

    os.makedirs(args.hits, exist_ok=True)
    started = time.time()

    def run_rule(rule):
        """One rule: its status, and its hits written."""
        rid = rule["id"]
        t0 = time.time()
        source = rule["source"]
        if source not in views:
            return rid, {"status": "skipped", "reason": f"needs the {source} input, which was not given"}
        sql = fill(rule, views[source]).replace("${as_of}", f"'{as_of}'")
        out = os.path.join(args.hits, rid + ".parquet")
        try:
            spark.sql(sql).coalesce(1).write.mode("overwrite").parquet(out)
            hits = spark.read.parquet(out).count()
            st = {"status": "ran", "hits": hits, "seconds": round(time.time() - t0, 3)}
        except AnalysisException as e:
            text = str(e).split("\n")[0]
            missing = re.search(r"`([^`]+)` cannot be resolved", text)
            if "UNRESOLVED_COLUMN" in text and missing:
                # As the engine says it (an optional column this export lacks).
                st = {"status": "skipped", "reason": f"column `{missing.group(1)}` is absent from the {source} input"}
            else:
                st = {"status": "failed", "reason": text}
        except Exception as e:  # a rule's failure is reported, the others run
            st = {"status": "failed", "reason": str(e).split("\n")[0]}
        print(f"{rid}: {st['status']} ({time.time() - t0:.2f} s)", file=sys.stderr)
        return rid, st

    todo = [r for r in job["rules"] if not args.only or r["id"] in args.only]
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        status = dict(pool.map(run_rule, todo))
    for rid, why in job.get("refused", {}).items():
        status[rid] = {"status": "not_exported", "reason": why}
    with open(os.path.join(args.hits, "status.json"), "w", encoding="utf-8") as fh:
        json.dump(status, fh, indent=2, sort_keys=True)
        fh.write("\n")
    ran = sum(1 for s in status.values() if s["status"] == "ran")
    print(f"{ran} of {len(status)} rules ran in {time.time() - started:.1f} s; hits in {args.hits}", file=sys.stderr)
    spark.stop()


if __name__ == "__main__":
    main()
