#!/usr/bin/env python3
"""Records the raw JSON pages Trino returns for a query, for decoder unit tests.

    scripts/record-trino-pages.py OUT.json "SELECT ..." [--url http://127.0.0.1:8080]

Writes {"query": ..., "columns": <Trino's column list>, "pages": [<each
non-empty `data` array exactly as Trino sent it>]}.
"""
import argparse, json, urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("sql")
ap.add_argument("--url", default="http://127.0.0.1:8080")
ap.add_argument("--time-zone", default="UTC")
a = ap.parse_args()

headers = {"X-Trino-User": "recorder", "X-Trino-Client-Capabilities": "PARAMETRIC_DATETIME",
           "X-Trino-Time-Zone": a.time_zone}
req = urllib.request.Request(a.url + "/v1/statement", data=a.sql.encode(), headers=headers, method="POST")
columns, pages = None, []
while req is not None:
    body = json.load(urllib.request.urlopen(req))
    if "error" in body:
        raise SystemExit(json.dumps(body["error"], indent=1)[:2000])
    columns = body.get("columns") or columns
    if body.get("data"):
        pages.append(body["data"])
    nxt = body.get("nextUri")
    req = urllib.request.Request(nxt, headers=headers) if nxt else None
with open(a.out, "w") as f:
    json.dump({"query": a.sql, "columns": columns, "pages": pages}, f)
print(f"{a.out}: {len(pages)} pages, {sum(len(p) for p in pages)} rows")
