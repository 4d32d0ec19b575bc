"""Superset, headless in its own virtual environment, against Flightdeck
(tests/superset/check_superset.py): through the `flightdeck://` dialect on
its Flight SQL port, and through the stock `trino://` dialect on its
Trino-protocol port."""

import os
import subprocess

from conftest import PASSWORD, ROOT, USER


def check_superset(trino_url, uri, *extra):
    python = os.environ.get("FLIGHTDECK_SUPERSET_PYTHON", "")
    assert python and os.path.exists(python), "scripts/test.sh provides Superset's venv (FLIGHTDECK_SUPERSET_PYTHON)"
    out = subprocess.run(
        [python, str(ROOT / "tests/superset/check_superset.py"), uri, trino_url.rsplit(":", 1)[1], *extra],
        capture_output=True, text=True, timeout=900,
    )
    print(out.stdout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "superset checks passed" in out.stdout


def test_superset(flightdeck, trino_url):
    port = flightdeck.rsplit(":", 1)[1]
    check_superset(trino_url, f"flightdeck://{USER}:{PASSWORD}@127.0.0.1:{port}/tpch/tiny")


def test_superset_stock_trino_dialect(trino_protocol, trino_url):
    """No Flightdeck package in Superset: its own Trino engine spec and the
    `trino` package's dialect, over HTTPS with a password."""
    port, cert = trino_protocol
    check_superset(trino_url, f"trino://{USER}:{PASSWORD}@localhost:{port}/tpch/tiny", str(cert))
