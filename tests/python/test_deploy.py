"""The deployment under deploy/, checked with real tools: the Helm chart
lints and renders for every environment; each rendered object validates
against the Kubernetes 1.30 schemas, and the ServiceMonitor and
PrometheusRule against the prometheus-operator CRDs; the rules pass
`promtool check rules` and their unit tests (tests/prometheus); every PromQL
expression of the rules and the Grafana dashboard parses, and names only
metrics that a running Flightdeck exports."""

import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import jsonschema
import kubernetes_validate
import promql_parser
import pyarrow.flight as fl
import pytest
import yaml

from conftest import ROOT, flightdeck_binary, hash_password, statement_query
from test_faults import Server, flight_client

CHART = ROOT / "deploy/helm/flightdeck"
RULES = CHART / "files/prometheus-rules.yaml"
DASHBOARDS = sorted((ROOT / "deploy/grafana").glob("*.json"))
ENVIRONMENTS = ["default", "dev", "staging", "prod"]
KUBERNETES = "1.30.0"
# The prometheus-operator release whose CRDs the monitoring objects must satisfy.
OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
# The user of the users file the rendered configuration is started with.
PASSWORD_USER = "operator"
# Series Prometheus makes itself, not Flightdeck.
PROMETHEUS_OWN = {"up"}


@pytest.fixture(scope="session")
def helm() -> str:
    out = subprocess.run([str(ROOT / "scripts/helm.sh")], check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def values_args(env: str) -> list[str]:
    return [] if env == "default" else ["-f", str(CHART / f"values-{env}.yaml")]


@pytest.fixture(scope="session")
def rendered(helm) -> dict[str, list[dict]]:
    out = {}
    for env in ENVIRONMENTS:
        text = subprocess.run(
            [helm, "template", "flightdeck", str(CHART), "--namespace", "data", "--kube-version", KUBERNETES,
             *values_args(env)],
            check=True, capture_output=True, text=True,
        ).stdout
        out[env] = [d for d in yaml.safe_load_all(text) if d]
    return out


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_chart_lints(helm, env):
    run = subprocess.run([helm, "lint", "--strict", str(CHART), *values_args(env)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_core_objects_validate_against_kubernetes(rendered, env):
    core = [d for d in rendered[env] if not d["apiVersion"].startswith("monitoring.coreos.com/")]
    kinds = {d["kind"] for d in core}
    assert {"Deployment", "Service", "ConfigMap"} <= kinds, kinds
    for doc in core:
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{env}: {doc['kind']} {doc['metadata']['name']}: {e.message} at {list(e.path)}")


class _CrdLoader(yaml.SafeLoader):
    """YAML 1.1 reads a bare `=` as the obsolete "value" type; the CRDs
    mean the string (an enum of operators)."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


@pytest.fixture(scope="session")
def operator_crds() -> dict[str, dict]:
    """openAPIV3Schema of each prometheus-operator kind, from its Go module."""
    got = json.loads(subprocess.run(["go", "mod", "download", "-json", OPERATOR], check=True,
                                    capture_output=True, text=True, cwd="/").stdout)
    schemas = {}
    for path in (Path(got["Dir"]) / "example/prometheus-operator-crd").glob("*.yaml"):
        crd = yaml.load(path.read_text(), Loader=_CrdLoader)
        version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
        schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_monitoring_objects_validate_against_the_operator_crds(rendered, operator_crds, env):
    monitoring = [d for d in rendered[env] if d["apiVersion"].startswith("monitoring.coreos.com/")]
    if env == "prod":
        assert {d["kind"] for d in monitoring} >= {"ServiceMonitor", "PrometheusRule"}
    for doc in monitoring:
        errors = sorted(jsonschema.Draft7Validator(operator_crds[doc["kind"]]).iter_errors(doc), key=str)
        assert not errors, f"{env}: {doc['kind']}: " + "; ".join(f"{e.message} at {list(e.path)}" for e in errors)


def test_production_values_give_a_hardened_scaled_deployment(rendered):
    docs = rendered["prod"]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} <= set(by_kind)
    deployment = by_kind["Deployment"][0]
    spec = deployment["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "flightdeck")
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"]
    assert spec.get("topologySpreadConstraints")
    config = next(d for d in by_kind["ConfigMap"] if "flightdeck.toml" in d.get("data", {}))["data"]["flightdeck.toml"]
    grace = int(re.search(r"shutdown_grace_secs\s*=\s*(\d+)", config).group(1))
    assert spec["terminationGracePeriodSeconds"] > grace, "the drain must end before the kubelet kills the pod"
    assert re.search(r"^\s*tls_cert\s*=", config, re.M), "TLS on in production"
    # No secret in a ConfigMap or on a command line: only files are named.
    for secret_key in ["ticket_secret", "password", "token"]:
        assert not re.search(rf"^\s*{secret_key}\s*=", config, re.M), f"{secret_key} written into the ConfigMap"
    for c in spec["containers"]:
        assert not any("secret" in a.lower() and "file" not in a.lower() for a in c.get("args", [])), c.get("args")
    grpc = [p for s in by_kind["Service"] for p in s["spec"]["ports"] if p.get("appProtocol") == "grpc"]
    assert grpc, "a gRPC-aware load balancer needs appProtocol"
    # The Service clients reach (not the headless one, not the admin one)
    # carries the client protocols only: Flight SQL and Trino's.
    public = [s for s in by_kind["Service"]
              if s["spec"].get("clusterIP") != "None" and any(p.get("appProtocol") == "grpc" for p in s["spec"]["ports"])]
    assert len(public) == 1, [s["metadata"]["name"] for s in public]
    assert [p["name"] for p in public[0]["spec"]["ports"]] == ["grpc", "trino-http"], public[0]["spec"]["ports"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_rendered_configuration_starts_flightdeck(rendered, env, tmp_path):
    """The TOML the chart renders is what the binary accepts: Flightdeck
    starts on it, with the secret files it names in place."""
    toml = next(d for d in rendered[env] if d["kind"] == "ConfigMap" and "flightdeck.toml" in d.get("data", {}))
    text = toml["data"]["flightdeck.toml"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    contents = {
        "ticket-secret": "s" * 48,
        "admin-token": "a" * 24,
        "trino-password": "trino-pw",
        "trino-token": "trino-token",
        "users": f"{PASSWORD_USER}:{hash_password('pw')}\n",
    }
    for path in sorted(set(re.findall(r'"(/(?:etc/flightdeck|vault/secrets)/[^"]+)"', text))):
        name = Path(path).name
        local = secrets / name
        if name in ("tls.crt", "tls.key"):
            if not (secrets / "tls.crt").exists():
                subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                "-subj", "/CN=flightdeck", "-keyout", str(secrets / "tls.key"),
                                "-out", str(secrets / "tls.crt")], check=True, capture_output=True)
        else:
            local.write_text(contents[name])
        text = text.replace(path, str(local))
    # Snapshots where the test may write, not where the pod's volume is.
    text = text.replace('"/var/lib/flightdeck/accel"', f'"{tmp_path / "accel"}"')
    config = tmp_path / "flightdeck.toml"
    config.write_text(text)
    # Loopback ports of the OS's choosing instead of the pod's fixed ones.
    env_vars = dict(os.environ, FLIGHTDECK_LISTEN="127.0.0.1:0", FLIGHTDECK_ADMIN_LISTEN="127.0.0.1:0")
    log = tmp_path / "log"
    with open(log, "w") as out:
        proc = subprocess.Popen([flightdeck_binary(), "serve", "--config", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, env=env_vars)
    try:
        deadline = time.time() + 30
        while not (m := re.search(r"admin HTTP on (http://\S+)", log.read_text())):
            assert proc.poll() is None, f"{env}: Flightdeck refused the rendered configuration:\n{log.read_text()}"
            assert time.time() < deadline, log.read_text()
            time.sleep(0.05)
        with urllib.request.urlopen(m.group(1) + "/health", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- PromQL ---------------------------------------------------------------


@pytest.fixture(scope="session")
def promtool() -> str:
    out = subprocess.run([str(ROOT / "scripts/promtool.sh")], check=True, capture_output=True, text=True).stdout
    return out.strip().splitlines()[-1]


def test_the_rules_check_and_fire_as_their_unit_tests_expect(promtool):
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tests = sorted((ROOT / "tests/prometheus").glob("*_test.yaml"))
    assert tests
    run = subprocess.run([promtool, "test", "rules", *map(str, tests)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr

# Grafana's variables, replaced by what they stand for so the text parses.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "${__range}": "1h",
    "$__range_s": "3600",
}


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every rule and every dashboard panel query."""
    found = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            found.append((f"rule {rule.get('alert') or rule.get('record')}", str(rule["expr"])))

    def panels(items):
        for p in items:
            yield p
            yield from panels(p.get("panels", []))

    for path in DASHBOARDS:
        for panel in panels(json.loads(path.read_text())["panels"]):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"{path.name}: {panel.get('title')}", target["expr"]))
    return found


def concrete(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    # Dashboard variables in label matchers: any value will do.
    return re.sub(r"\$\{?(\w+)\}?", r"\1", expr)


def metric_names(node) -> set[str]:
    names = set()
    if isinstance(node, promql_parser.VectorSelector) and node.name:
        names.add(node.name)
    for attr in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attr, None)
        if child is not None and type(child).__module__.startswith("promql_parser"):
            names |= metric_names(child)
    for arg in getattr(node, "args", None) or []:
        names |= metric_names(arg)
    return names


def test_there_are_rules_and_panels_to_check():
    where = [w for w, _ in expressions()]
    assert any(w.startswith("rule") for w in where) and any(not w.startswith("rule") for w in where), where
    alerts = {r.get("alert") for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert {"FlightdeckTrinoUnreachable", "FlightdeckMemoryNearBudget"} <= alerts, alerts


@pytest.mark.parametrize("where,expr", expressions())
def test_every_expression_parses(where, expr):
    try:
        promql_parser.parse(concrete(expr))
    except Exception as e:  # the parser raises a plain exception naming the position
        pytest.fail(f"{where}: {e}\n{expr}")


@pytest.fixture(scope="module")
def exported(trino_url, tmp_path_factory) -> set[str]:
    """The series names a Flightdeck exports once it has served a little of
    everything: a miss, a hit, a bypass, a refused statement, and loaded a
    dataset."""
    tmp = tmp_path_factory.mktemp("deploy")
    # One accelerated dataset, so that the dataset series exist.
    (tmp / "flightdeck.toml").write_text(f'[accel]\ndir = "{tmp / "accel"}"\n\n[[datasets]]\ntable = "tpch.tiny.region"\n')
    server = Server(trino_url, tmp, "--config", str(tmp / "flightdeck.toml"))
    try:
        client, options = flight_client(server)
        for sql in ["SELECT name FROM tpch.tiny.region", "SELECT name FROM tpch.tiny.region", "SELECT now()"]:
            info = client.get_flight_info(statement_query(sql), options)
            client.do_get(info.endpoints[0].ticket, options).read_all()
        with pytest.raises((fl.FlightError, KeyError)):  # pyarrow raises NOT_FOUND as KeyError
            client.get_flight_info(statement_query("SELECT no_such_column FROM tpch.tiny.region"), options)
        client.close()
        deadline = time.monotonic() + 30
        while server.http("/ready")[0] != 200:
            assert time.monotonic() < deadline, "not ready: " + server.http("/ready")[1]
            time.sleep(0.1)
        text = server.http("/metrics")[1]
    finally:
        server.stop()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_every_metric_named_is_exported(exported):
    recorded = {r["record"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "record" in r}
    missing = {}
    for where, expr in expressions():
        for name in metric_names(promql_parser.parse(concrete(expr))):
            if name not in exported and name not in recorded and name not in PROMETHEUS_OWN:
                missing.setdefault(name, []).append(where)
    assert not missing, f"named but not exported by Flightdeck: {missing}"
