"""Writes flightdeck-slo.json, the Grafana dashboard beside this file.

Edit the panels here and run `python3 deploy/grafana/dashboard.py`; the
JSON is generated, and tests/python/test_deploy.py checks every query in it.
"""

import json
from pathlib import Path

DS = {"type": "prometheus", "uid": "${datasource}"}
S = 'namespace="$namespace", job="$job"'
FAULTS = 'code=~"INTERNAL|UNAVAILABLE|UNKNOWN|DATA_LOSS"'
panels = []
_id = [0]
_y = [0]


def nid():
    _id[0] += 1
    return _id[0]


def row(title):
    panels.append({"type": "row", "id": nid(), "title": title, "collapsed": False, "panels": [],
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": _y[0]}})
    _y[0] += 1


def target(expr, legend, ref):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True, "instant": False}


def thresholds(*steps):
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def ts(title, desc, targets, unit, x, w, h=8, lines=None, log=False, stack=False, minv=None, maxv=None, overrides=None):
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if not stack else 60, "showPoints": "never",
              "spanNulls": False, "axisSoftMin": 0,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    if log:
        custom["scaleDistribution"] = {"type": "log", "log": 10}
        del custom["axisSoftMin"]
    defaults = {"unit": unit, "custom": custom}
    if lines:
        defaults["thresholds"] = thresholds(("green", None), *[("red", v) for v in lines])
        custom["thresholdsStyle"] = {"mode": "line+area" if False else "line"}
    if minv is not None:
        defaults["min"] = minv
    if maxv is not None:
        defaults["max"] = maxv
    p = {"type": "timeseries", "id": nid(), "title": title, "description": desc, "datasource": DS,
         "gridPos": {"h": h, "w": w, "x": x, "y": _y[0]},
         "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
         "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                     "tooltip": {"mode": "multi", "sort": "desc"}},
         "targets": [target(e, l, chr(65 + i)) for i, (e, l) in enumerate(targets)]}
    panels.append(p)
    return p


def stat(title, desc, expr, unit, x, w, th, h=6, decimals=None):
    defaults = {"unit": unit, "thresholds": th, "color": {"mode": "thresholds"}}
    if decimals is not None:
        defaults["decimals"] = decimals
    panels.append({"type": "stat", "id": nid(), "title": title, "description": desc, "datasource": DS,
                   "gridPos": {"h": h, "w": w, "x": x, "y": _y[0]},
                   "fieldConfig": {"defaults": defaults, "overrides": []},
                   "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                               "colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                               "orientation": "auto", "textMode": "auto"},
                   "targets": [target(expr, "{{job}}", "A")]})


def quantiles(metric, extra, by):
    sel = S + (", " + extra if extra else "")
    out = []
    for q in ("0.5", "0.95", "0.99"):
        expr = f"histogram_quantile({q}, sum by ({by}le) (rate({metric}_bucket{{{sel}}}[5m])))"
        label = "p" + str(int(float(q) * 100))
        out.append((expr, label + (" {{route}}" if "route" in by else "")))
    return out


def nl():
    _y[0] = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)


# ---- SLO ----
row("SLO: statement p95 under 100 ms on 99 % of 5-minute windows (30 days)")
stat("Error budget left (30 d)",
     "Share of the 30-day allowance of bad windows (1 % of them, 7.2 h) not yet spent. Below 0 the SLO is missed. "
     "From the recording rule flightdeck:slo_error_budget_remaining:ratio_30d (deploy/helm/flightdeck/files/prometheus-rules.yaml); "
     "empty until those rules are loaded.",
     f"flightdeck:slo_error_budget_remaining:ratio_30d{{{S}}}", "percentunit", 0, 6,
     thresholds(("red", None), ("orange", 0), ("yellow", 0.25), ("green", 0.5)))
stat("Good 5-minute windows (30 d)",
     "Share of 5-minute windows (judged every minute) whose GetFlightInfo p95 was under 100 ms. Objective: 99 %.",
     f"flightdeck:slo_good_windows:ratio_30d{{{S}}}", "percentunit", 6, 6,
     thresholds(("red", None), ("green", 0.99)), decimals=2)
ts("Burn rate",
   "Share of bad windows over each lookback divided by the 1 % allowed. Page when 1 h and 5 m are both over 14.4; "
   "ticket when 6 h and 30 m are both over 6. 1 spends the budget in exactly 30 days.",
   [(f"flightdeck:slo_burn_rate:{w}{{{S}}}", w) for w in ("5m", "30m", "1h", "6h")],
   "none", 12, 12, h=6, lines=[6, 14.4])
nl()
ts("Statements within 100 ms (SLI) and window verdict",
   "SLI: share of GetFlightInfo calls of statements answered within 0.1 s over the last 5 minutes. "
   "A window is good (1) when it is at least 95 %. Gaps: no statement in the window.",
   [(f"flightdeck:sli_fast:ratio_rate5m{{{S}}}", "within 100 ms"),
    (f"flightdeck:slo_window_good:5m{{{S}}}", "window good")],
   "percentunit", 0, 12, lines=[0.95], minv=0, maxv=1)
ts("Statement p95 against the objective",
   "p95 of GetFlightInfo for statements (planning; on a miss, the whole fill from Trino) over 5 minutes, all routes together, "
   "against the 100 ms line.",
   [(f'histogram_quantile(0.95, sum by (le) (rate(flightdeck_request_seconds_bucket{{{S}, rpc="get_flight_info"}}[5m])))', "p95")],
   "s", 12, 12, lines=[0.1], log=True)
nl()

# ---- Requests ----
row("Requests")
ts("Statement rate by route and cache outcome",
   "Statement RPCs per second (flightdeck_request_seconds): GetFlightInfo plans, DoGet redeems tickets.",
   [(f"sum by (rpc, route, cache) (rate(flightdeck_request_seconds_count{{{S}}}[5m]))", "{{rpc}} {{route}}/{{cache}}")],
   "reqps", 0, 12)
ts("gRPC calls by method and status code",
   "Every gRPC call (flightdeck_requests_total), by method and status code.",
   [(f"sum by (rpc, code) (rate(flightdeck_requests_total{{{S}}}[5m]))", "{{rpc}} {{code}}")],
   "reqps", 12, 12)
nl()
ts("GetFlightInfo latency by route",
   "Planning a statement; on a cache miss this includes the whole fill from Trino. Route cache: hits and stale serves.",
   quantiles("flightdeck_request_seconds", 'rpc="get_flight_info"', "route, "), "s", 0, 12, log=True, lines=[0.1])
ts("DoGet latency by route",
   "From DoGet to the start of the stream (not the whole transfer).",
   quantiles("flightdeck_request_seconds", 'rpc="do_get"', "route, "), "s", 12, 12, log=True)
nl()
ts("Error ratio by status code",
   "Share of gRPC calls ending with each non-OK code. Server faults (INTERNAL, UNAVAILABLE, UNKNOWN, DATA_LOSS) "
   "over 1 % for 10 minutes raise FlightdeckErrorRatioHigh; user errors (INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED) do not.",
   [(f'sum by (code) (rate(flightdeck_requests_total{{{S}, code!="OK"}}[5m])) / ignoring (code) group_left sum(rate(flightdeck_requests_total{{{S}}}[5m]))', "{{code}}"),
    (f"sum(rate(flightdeck_requests_total{{{S}, {FAULTS}}}[5m])) / sum(rate(flightdeck_requests_total{{{S}}}[5m]))", "server faults")],
   "percentunit", 0, 24, lines=[0.01])
nl()

# ---- Cache ----
row("Result cache (each replica has its own)")
ts("Cache outcome share",
   "Share of planned statements by cache outcome (flightdeck_routed_total). bypass: not cacheable, cache off, too large or no-cache.",
   [(f"sum by (cache) (rate(flightdeck_routed_total{{{S}}}[5m])) / ignoring (cache) group_left sum(rate(flightdeck_routed_total{{{S}}}[5m]))", "{{cache}}")],
   "percentunit", 0, 12, stack=True, minv=0, maxv=1)
ts("Cache hit ratio",
   "Hit ratio of cache lookups: (hits + stale serves) / (hits + stale serves + misses). Served from cache: share of all "
   "planned statements answered by the cache, bypassed ones included.",
   [(f"(sum(rate(flightdeck_cache_hits_total{{{S}}}[5m])) + sum(rate(flightdeck_cache_stale_total{{{S}}}[5m]))) / "
     f"(sum(rate(flightdeck_cache_hits_total{{{S}}}[5m])) + sum(rate(flightdeck_cache_stale_total{{{S}}}[5m])) + sum(rate(flightdeck_cache_misses_total{{{S}}}[5m])))",
     "hit ratio of lookups"),
    (f'sum(rate(flightdeck_routed_total{{{S}, route="cache"}}[5m])) / sum(rate(flightdeck_routed_total{{{S}}}[5m]))',
     "served from cache")],
   "percentunit", 12, 12, minv=0, maxv=1)
nl()
ts("Cache bytes against budget",
   "Bytes held by each replica's cache against cache max_bytes (the same on every replica).",
   [(f"flightdeck_cache_bytes{{{S}}}", "{{pod}}"),
    (f"max(flightdeck_cache_max_bytes{{{S}}})", "budget (max_bytes)")],
   "bytes", 0, 8, overrides=[{"matcher": {"id": "byName", "options": "budget (max_bytes)"},
                                "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                                               {"id": "custom.fillOpacity", "value": 0}]}])
ts("Evictions, refreshes and oversized results",
   "Evictions by reason (size means the budget pushed live entries out), background refreshes of stale entries, "
   "and results larger than max_entry_bytes that streamed through uncached.",
   [(f"sum by (reason) (rate(flightdeck_cache_evictions_total{{{S}}}[5m]))", "evicted: {{reason}}"),
    (f"sum(rate(flightdeck_cache_refreshes_total{{{S}}}[5m]))", "refreshes"),
    (f"sum(rate(flightdeck_cache_too_large_total{{{S}}}[5m]))", "too large")],
   "ops", 8, 8)
ts("Cache fill time",
   "Time to fill an entry from Trino (one fill serves every concurrent identical miss).",
   quantiles("flightdeck_cache_fill_seconds", "", ""), "s", 16, 8, log=True)
nl()

# ---- Trino ----
row("Trino")
p = ts("Trino reachable",
       "Each replica probes Trino every 10 s: 1 when it answered, 0 otherwise (FlightdeckTrinoUnreachable after 2 minutes at 0).",
       [(f"flightdeck_trino_up{{{S}}}", "{{pod}}")], "none", 0, 8, minv=0, maxv=1)
p["type"] = "state-timeline"
p["fieldConfig"]["defaults"] = {
    "unit": "none", "color": {"mode": "thresholds"},
    "thresholds": thresholds(("red", None), ("green", 1)),
    "mappings": [{"type": "value", "options": {"0": {"text": "down", "color": "red", "index": 0},
                                                "1": {"text": "up", "color": "green", "index": 1}}}],
    "custom": {"fillOpacity": 80, "lineWidth": 0}}
p["options"] = {"showValue": "never", "mergeValues": True, "rowHeight": 0.9, "alignValue": "left",
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
                "tooltip": {"mode": "single", "sort": "none"}}
ts("Trino query slots in use",
   "Queries each replica runs on Trino now (parked ones count) against trino max_concurrent_queries.",
   [(f"flightdeck_trino_running_queries{{{S}}}", "{{pod}}"),
    (f"max(flightdeck_trino_max_concurrent_queries{{{S}}})", "slots per replica")],
   "none", 8, 8)
ts("Trino queries and bytes",
   "Queries submitted to Trino, and bytes of Trino's responses, per second, all replicas.",
   [(f"sum(rate(flightdeck_trino_queries_total{{{S}}}[5m]))", "queries/s"),
    (f"sum(rate(flightdeck_trino_bytes_total{{{S}}}[5m]))", "bytes/s")],
   "ops", 16, 8, overrides=[{"matcher": {"id": "byName", "options": "bytes/s"},
                              "properties": [{"id": "unit", "value": "Bps"},
                                             {"id": "custom.axisPlacement", "value": "right"}]}])
nl()
ts("Trino query latency",
   "A Trino query from submission to its last page.",
   quantiles("flightdeck_trino_query_seconds", "", ""), "s", 0, 12, log=True)
ts("Wait for a Trino query slot",
   "Time a query waited for one of max_concurrent_queries slots; p95 over 1 s for 10 minutes raises FlightdeckTrinoSlotsSaturated.",
   quantiles("flightdeck_trino_queue_seconds", "", ""), "s", 12, 12, log=True, lines=[1])
nl()

# ---- Memory and streams ----
row("Memory and streams")
ts("Memory reserved against budget",
   "Results buffered outside the cache (fills in progress, parked read-ahead, answers of writes) per replica, against "
   "memory_budget. At the budget new work fails with RESOURCE_EXHAUSTED.",
   [(f"flightdeck_memory_reserved_bytes{{{S}}}", "{{pod}}"),
    (f"max(flightdeck_memory_budget_bytes{{{S}}})", "budget"),
    (f"0.85 * max(flightdeck_memory_budget_bytes{{{S}}})", "alert (85 %)")],
   "bytes", 0, 8)
ts("Open streams and parked statements",
   "DoGet streams being pumped now (the HPA's metric) and statements parked waiting for their DoGet, per replica.",
   [(f"flightdeck_streams_open{{{S}}}", "streams {{pod}}"),
    (f"flightdeck_pending_queries{{{S}}}", "parked {{pod}}")],
   "none", 8, 8)
ts("Refusals and expiries",
   "Requests refused for memory (RESOURCE_EXHAUSTED), parked statements refused (registry or per-user limit), evicted "
   "for room, or cancelled because no DoGet came within pending_query_ttl_secs.",
   [(f"sum(rate(flightdeck_memory_exhausted_total{{{S}}}[5m]))", "memory exhausted"),
    (f"sum(rate(flightdeck_pending_refused_total{{{S}}}[5m]))", "parking refused"),
    (f"sum(rate(flightdeck_pending_evicted_total{{{S}}}[5m]))", "parked evicted"),
    (f"sum(rate(flightdeck_pending_expired_total{{{S}}}[5m]))", "parked expired")],
   "ops", 16, 8)

nl()

# ---- Accelerated datasets ----
row("Accelerated datasets")
ts("Dataset lag",
   "Seconds since each dataset was last confirmed current (the start of its last successful refresh). Over 30 minutes "
   "for 10 minutes raises FlightdeckDatasetStale.",
   [(f"time() - max by (table) (flightdeck_dataset_last_refresh_timestamp_seconds{{{S}}})", "{{table}}")],
   "s", 0, 8, lines=[1800])
ts("Refreshes failing and rows pulled",
   "Failed refreshes (the previous version stays and is served) and rows read from Trino per second, by dataset. "
   "An append refresh reads only the stretch after its watermark, minus the overlap.",
   [(f"sum by (table) (rate(flightdeck_dataset_refresh_failures_total{{{S}}}[5m]))", "failures {{table}}"),
    (f"sum by (table) (rate(flightdeck_dataset_rows_pulled_total{{{S}}}[5m]))", "rows pulled {{table}}")],
   "ops", 8, 8)
ts("Dataset memory against budget",
   "Bytes held by each dataset, and all datasets against [accel] memory_budget, per replica. A dataset that would "
   "exceed it fails; the others and the server serve on.",
   [(f"max by (table) (flightdeck_dataset_bytes{{{S}}})", "{{table}}"),
    (f"max(flightdeck_accel_reserved_bytes{{{S}}})", "all datasets"),
    (f"max(flightdeck_accel_budget_bytes{{{S}}})", "budget")],
   "bytes", 16, 8)
nl()
ts("Refresh duration",
   "Time of each refresh, from asking Trino to the new version swapped in.",
   [(f"histogram_quantile(0.95, sum by (table, le) (rate(flightdeck_dataset_refresh_seconds_bucket{{{S}}}[5m])))", "p95 {{table}}")],
   "s", 0, 12, log=True)
ts("Dataset rows",
   "Rows of the version each dataset serves.",
   [(f"max by (table) (flightdeck_dataset_rows{{{S}}})", "{{table}}")],
   "none", 12, 12)

var_ds = {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
          "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": [], "includeAll": False, "multi": False}


def qvar(name, label, q):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": q, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1},
            "definition": q, "current": {}, "hide": 0, "refresh": 2, "regex": "", "sort": 1,
            "options": [], "includeAll": False, "multi": False}


dash = {
    "title": "Flightdeck SLO",
    "uid": "flightdeck-slo",
    "description": "Flightdeck: statement latency SLO, requests, result cache, Trino, memory and streams, accelerated datasets. See docs/operations.md.",
    "tags": ["flightdeck", "trino", "slo"],
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "graphTooltip": 1,
    "timezone": "browser",
    "refresh": "1m",
    "time": {"from": "now-6h", "to": "now"},
    "timepicker": {},
    "fiscalYearStartMonth": 0,
    "liveNow": False,
    "links": [],
    "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                              "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                              "type": "dashboard"}]},
    "templating": {"list": [
        var_ds,
        qvar("namespace", "Namespace", "label_values(flightdeck_routed_total, namespace)"),
        qvar("job", "Job", 'label_values(flightdeck_routed_total{namespace="$namespace"}, job)'),
    ]},
    "panels": panels,
}
with open(Path(__file__).with_name("flightdeck-slo.json"), "w") as f:
    json.dump(dash, f, indent=2, ensure_ascii=False)
    f.write("\n")
