#!/usr/bin/env python3
"""Flightdeck's CPU per query, for a few fixed queries, one client.

    scripts/query-cpu.py --pid PID [--url grpc://127.0.0.1:50051] [--runs 200] [--query NAME ...]

Sends each query `--runs` times through ADBC (after 20 runs to warm up)
and prints the wall time per query and the CPU time the Flightdeck
process `PID` used per query, read from /proc: a measure of a change to
the local engine that the machine's other tenants disturb less than wall
times. Run it with the result cache off (`--cache false`) against a
Flightdeck that accelerates the load harness's energy series
(`memory.bench_energy.prices`, append mode on `ts`), and alternate the
builds being compared.
"""

import argparse
import os
import time

import adbc_driver_flightsql.dbapi as flightsql

T = "memory.bench_energy.prices"
R = "ts >= TIMESTAMP '2022-03-01 00:00:00' AND ts < TIMESTAMP '2022-03-31 00:00:00'"
QUERIES = {
    # Planning and the answer's trip, no rows read.
    "empty": f"SELECT market, count(*) AS n FROM {T} WHERE ts >= TIMESTAMP '2030-01-01 00:00:00' GROUP BY market",
    # A month of rows (720 000), grouped by a category and a time bucket.
    "market_month": f"SELECT market, date_trunc('month', ts) AS month, sum(emissions_t) AS t FROM {T} "
    f"WHERE {R} GROUP BY 1, 2 ORDER BY 1, 2",
    "market_week": f"SELECT market, date_trunc('week', ts) AS w, avg(price) AS avg_price FROM {T} "
    f"WHERE market IN ('PJM', 'ERCOT', 'MISO') AND {R} GROUP BY 1, 2 ORDER BY 1, 2",
    # By a time bucket only.
    "day": f"SELECT date_trunc('day', ts) AS t, avg(price) AS avg_price FROM {T} "
    f"WHERE market = 'PJM' AND {R} GROUP BY 1 ORDER BY 1",
    "month": f"SELECT date_trunc('month', ts) AS month, sum(emissions_t) AS t FROM {T} WHERE {R} GROUP BY 1",
}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pid", type=int, required=True, help="the Flightdeck process")
    p.add_argument("--url", default="grpc://127.0.0.1:50051")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--query", action="append", choices=sorted(QUERIES), help="default: all")
    args = p.parse_args()
    cursor = flightsql.connect(args.url).cursor()
    for name in args.query or QUERIES:
        sql = QUERIES[name]
        for _ in range(20):
            cursor.execute(sql)
            cursor.fetchall()
        cpu, start = cpu_seconds(args.pid), time.perf_counter()
        for _ in range(args.runs):
            cursor.execute(sql)
            cursor.fetchall()
        wall = (time.perf_counter() - start) / args.runs * 1000
        used = (cpu_seconds(args.pid) - cpu) / args.runs * 1000
        print(f"{name:14s} wall {wall:6.2f} ms   Flightdeck CPU {used:6.2f} ms")


if __name__ == "__main__":
    main()
