"""Superset, headless in its own virtual environment, against Flightdeck
through the `flightdeck://` dialect (tests/superset/check_superset.py)."""

import os
import subprocess

from conftest import PASSWORD, ROOT, USER


def test_superset(flightdeck, trino_url):
    python = os.environ.get("FLIGHTDECK_SUPERSET_PYTHON", "")
    assert python and os.path.exists(python), "scripts/test.sh provides Superset's venv (FLIGHTDECK_SUPERSET_PYTHON)"
    port = flightdeck.rsplit(":", 1)[1]
    uri = f"flightdeck://{USER}:{PASSWORD}@127.0.0.1:{port}/tpch/tiny"
    out = subprocess.run(
        [python, str(ROOT / "tests/superset/check_superset.py"), uri, trino_url.rsplit(":", 1)[1]],
        capture_output=True, text=True, timeout=900,
    )
    print(out.stdout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "superset checks passed" in out.stdout
