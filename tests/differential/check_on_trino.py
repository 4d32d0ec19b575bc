#!/usr/bin/env python3
"""Run the differential corpus against a real Trino.

Runs setup.sql (blocks separated by a line holding only ----), then every
query record of every *.slt file in this directory.  Records marked
`query error` must fail on Trino; all others must succeed.  Each query is run
twice (the second time with another task_concurrency) and the two results
compared (as lists for `query`, as multisets for `query unordered`) to catch
non-deterministic queries.

Usage:
    check_on_trino.py [--url http://127.0.0.1:8080] [--user test]
                      [--no-setup] [--verbose] [--columns] [file.slt ...]
Exit status 0 when there is no unexpected failure.
"""

import argparse
import math
import os
import sys
import time
from collections import OrderedDict
from urllib.parse import urlparse

import trino
import trino.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_ROWS = 2000


def split_setup(text):
    blocks, cur = [], []
    for line in text.splitlines():
        if line.strip() == "----":
            blocks.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    blocks.append("\n".join(cur))
    out = []
    for b in blocks:
        # a block made only of comments and blank lines is not a statement
        code = [l for l in b.splitlines() if l.strip() and not l.strip().startswith("--")]
        if code:
            out.append(b.strip())
    return out


class Record:
    def __init__(self, path, line, kind, sql):
        self.path, self.line, self.kind, self.sql = path, line, kind, sql


def parse_slt(path):
    """Records: a line `query`, `query unordered` or `query error`, then SQL
    lines up to a blank line (or end of file).  Lines starting with # outside
    a record are comments."""
    records = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if not s or s.startswith("#"):
            i += 1
            continue
        words = s.split()
        if words[0] != "query" or len(words) > 2 or (len(words) == 2 and words[1] not in ("unordered", "error")):
            raise SystemExit(f"{path}:{i + 1}: unexpected line {line!r}")
        kind = words[1] if len(words) == 2 else "ordered"
        start = i + 1
        i += 1
        sql = []
        while i < len(lines) and lines[i].strip() != "":
            sql.append(lines[i])
            i += 1
        if not sql:
            raise SystemExit(f"{path}:{start}: query record without SQL")
        text = "\n".join(sql)
        if text.rstrip().endswith(";"):
            raise SystemExit(f"{path}:{start}: trailing semicolon")
        records.append(Record(path, start, kind, text))
    return records


def top_level_sql(sql):
    """The query text outside parentheses, string literals and comments,
    lower-cased and with whitespace collapsed."""
    out, depth, i, n = [], 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c in "'\"":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            out.append(" ")
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0:
            out.append(c)
        i += 1
    return " ".join("".join(out).lower().split())


def norm_value(v):
    if isinstance(v, float):
        if math.isnan(v):
            return ("nan",)
        return ("float", repr(v))
    if isinstance(v, list):
        return tuple(norm_value(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((norm_value(k), norm_value(x)) for k, x in v.items()))
    return (type(v).__name__, repr(v))


def norm_rows(rows, ordered):
    n = [tuple(norm_value(v) for v in r) for r in rows]
    return n if ordered else sorted(n)


def connect(args, session_properties=None):
    u = urlparse(args.url)
    return trino.dbapi.connect(
        host=u.hostname,
        port=u.port or (443 if u.scheme == "https" else 80),
        http_scheme=u.scheme or "http",
        user=args.user,
        catalog="memory",
        schema="diff",
        session_properties=session_properties or {},
        legacy_primitive_types=True,  # raw JSON values: NaN/Infinity strings, decimals as text
    )


def run(conn, sql, wait_for_start=60.0):
    deadline = time.time() + wait_for_start
    while True:
        cur = conn.cursor()
        try:
            cur.execute(sql)
            rows = cur.fetchall()
            break
        except trino.exceptions.TrinoQueryError as e:
            # a (re)starting server answers SERVER_STARTING_UP for a while
            if e.error_name == "SERVER_STARTING_UP" and time.time() < deadline:
                time.sleep(2)
                continue
            raise
    cols = [d[0] for d in (cur.description or [])]
    types = [d[1] for d in (cur.description or [])]
    return cols, types, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=os.environ.get("TRINO_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--user", default="test")
    ap.add_argument("--no-setup", action="store_true")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every query's row count")
    ap.add_argument("--columns", action="store_true", help="print result column names and types")
    ap.add_argument("--repeat", type=int, default=2, help="runs per query (determinism check)")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()

    conn = connect(args)
    # Repeated runs use a different degree of parallelism, which changes the
    # order in which ties leave a sort: a `query` whose ORDER BY is not a
    # total order is then likely to show up as non-deterministic.
    alt_conns = [connect(args, {"task_concurrency": "1"}), connect(args, {"task_concurrency": "2"})]
    if not args.no_setup:
        t0 = time.time()
        with open(os.path.join(HERE, "setup.sql"), encoding="utf-8") as f:
            stmts = split_setup(f.read())
        for s in stmts:
            try:
                run(conn, s)
            except Exception as e:  # noqa: BLE001
                print(f"SETUP FAILED: {s.splitlines()[0]}...\n  {e}")
                return 2
        print(f"setup: {len(stmts)} statements in {time.time() - t0:.1f}s")
        _, _, rows = run(conn, "SELECT count(*) FROM memory.diff.readings")
        print(f"setup: memory.diff.readings has {rows[0][0]} rows")

    files = args.files or sorted(
        os.path.join(HERE, f) for f in os.listdir(HERE) if f.endswith(".slt"))
    summary = OrderedDict()
    failures = []
    big = []
    for path in files:
        recs = parse_slt(path)
        stats = {"queries": len(recs), "ordered": 0, "unordered": 0, "error": 0, "failed": 0, "rows": 0}
        for r in recs:
            stats[r.kind] += 1
            where = f"{os.path.basename(r.path)}:{r.line}"
            results = []
            err = None
            for i in range(max(1, args.repeat if r.kind != "error" else 1)):
                c = conn if i == 0 else alt_conns[(i - 1) % len(alt_conns)]
                try:
                    results.append(run(c, r.sql))
                except Exception as e:  # noqa: BLE001
                    err = e
                    break
            if r.kind == "error":
                if err is None:
                    stats["failed"] += 1
                    failures.append((where, "expected an error, got %d rows" % len(results[0][2]), r.sql))
                elif args.verbose:
                    msg = getattr(err, "message", None) or str(err)
                    print(f"  {where}: error as expected: {msg.splitlines()[0][:150]}")
                continue
            if err is not None:
                stats["failed"] += 1
                msg = getattr(err, "message", None) or str(err)
                failures.append((where, msg.splitlines()[0][:300], r.sql))
                continue
            cols, types, rows = results[0]
            stats["rows"] += len(rows)
            if len(rows) > MAX_ROWS:
                big.append((where, len(rows)))
            for other in results[1:]:
                if norm_rows(other[2], r.kind == "ordered") != norm_rows(rows, r.kind == "ordered"):
                    stats["failed"] += 1
                    failures.append((where, "result differs between two runs (non-deterministic)", r.sql))
                    break
            if r.kind == "ordered" and len(rows) > 1 and "order by" not in top_level_sql(r.sql):
                stats["failed"] += 1
                failures.append((where, "several rows but no ORDER BY: mark it `query unordered`", r.sql))
            if args.verbose:
                print(f"  {where}: {len(rows)} rows")
            if args.columns:
                print(f"  {where}: " + ", ".join(f"{c} {t}" for c, t in zip(cols, types)))
        summary[os.path.basename(path)] = stats

    print()
    print(f"{'file':<22}{'queries':>8}{'ordered':>9}{'unord.':>8}{'error':>7}{'rows':>8}{'failed':>8}")
    tot = {k: 0 for k in ("queries", "ordered", "unordered", "error", "rows", "failed")}
    for name, s in summary.items():
        print(f"{name:<22}{s['queries']:>8}{s['ordered']:>9}{s['unordered']:>8}{s['error']:>7}{s['rows']:>8}{s['failed']:>8}")
        for k in tot:
            tot[k] += s[k]
    print(f"{'total':<22}{tot['queries']:>8}{tot['ordered']:>9}{tot['unordered']:>8}{tot['error']:>7}{tot['rows']:>8}{tot['failed']:>8}")
    if big:
        print(f"\nqueries returning more than {MAX_ROWS} rows:")
        for where, n in big:
            print(f"  {where}: {n} rows")
    if failures:
        print(f"\n{len(failures)} unexpected failures:")
        for where, msg, sql in failures:
            print(f"--- {where}: {msg}")
            print("    " + sql.replace("\n", "\n    "))
    else:
        print("\nno unexpected failures")
    return 1 if failures or big else 0


if __name__ == "__main__":
    sys.exit(main())
