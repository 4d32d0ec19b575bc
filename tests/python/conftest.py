"""Fixtures for the Python client tests: the project's local Trino and a
Flightdeck binary started with password authentication."""

import concurrent.futures
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow.flight as fl
import pytest
import requests
import trino
import trino.auth
import trino.dbapi

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "alice", "s3cret"

# Servers these tests start leave Trino's protocol off unless they ask for
# it: two of them at once would both want its default port.
os.environ.setdefault("FLIGHTDECK_TRINO_PROTOCOL_LISTEN", "")


def _pb_field(number: int, data: bytes) -> bytes:
    """A length-delimited protobuf field."""
    def varint(n):
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)
    return varint(number << 3 | 2) + varint(len(data)) + data


def statement_query(sql: str) -> fl.FlightDescriptor:
    """A FlightDescriptor holding Any(CommandStatementQuery{query}), encoded
    by hand: pyarrow.flight knows no Flight SQL messages."""
    command = _pb_field(1, sql.encode())
    return fl.FlightDescriptor.for_command(
        _pb_field(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery") + _pb_field(2, command)
    )


def listening(proc, log: Path, timeout: float = 30) -> dict[str, str]:
    """Where `flightdeck serve` listens, as it prints once bound to the ports
    the system gave it (each asked as port 0, so no other process can take
    one first): {"flight": "host:port", "admin": "http://...", "trino":
    "host:port" when served}. The admin address is printed last."""
    patterns = {"flight": r"Flight SQL listening on \S+://(\S+)", "trino": r"Trino protocol on \S+://(\S+)",
                "admin": r"admin HTTP on (http://\S+)"}
    deadline = time.time() + timeout
    while True:
        text = log.read_text(errors="replace")
        if re.search(patterns["admin"], text):
            return {k: m.group(1) for k, p in patterns.items() if (m := re.search(p, text))}
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError("Flightdeck did not start:\n" + text)
        time.sleep(0.05)


@pytest.fixture(scope="session")
def trino_url() -> str:
    subprocess.run([str(ROOT / "scripts/trino.sh"), "start"], check=True)
    return f"http://127.0.0.1:{os.environ.get('TRINO_PORT', '8080')}"


def flightdeck_binary() -> str:
    return os.environ.get("FLIGHTDECK_BIN") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "flightdeck"
    )


def hash_password(password: str) -> str:
    """`flightdeck hash-password --cost 4` of `password` (read from stdin)."""
    return subprocess.run(
        [flightdeck_binary(), "hash-password", "--cost", "4"],
        input=password.encode(), capture_output=True, check=True,
    ).stdout.decode().strip()


def start_flightdeck(trino_url: str, tmp: Path, *extra: str, users=None):
    """Starts `flightdeck serve` with password auth for `users`, a list of
    (user, password) pairs (default: USER alone); returns the process and
    its Flight SQL port once it accepts connections. Trino's protocol is
    served too, on `proc.trino_port`."""
    binary = flightdeck_binary()
    users = users or [(USER, PASSWORD)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        hashes = list(pool.map(hash_password, [p for _, p in users]))
    users_file = tmp / "users"
    users_file.write_text("".join(f"{u}:{h}\n" for (u, _), h in zip(users, hashes)), encoding="utf-8")
    log = open(tmp / "flightdeck.log", "w")
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--trino-url", trino_url,
         "--auth", "password", "--users-file", str(users_file), "--admin-listen", "127.0.0.1:0",
         "--trino-protocol-listen", "127.0.0.1:0", *extra],
        stdout=log, stderr=subprocess.STDOUT,
    )
    at = listening(proc, tmp / "flightdeck.log")
    port = int(at["flight"].rsplit(":", 1)[1])
    proc.trino_port = int(at["trino"].rsplit(":", 1)[1])
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError((tmp / "flightdeck.log").read_text())
            time.sleep(0.1)


@pytest.fixture(scope="session")
def flightdeck(trino_url, tmp_path_factory):
    """Starts `flightdeck serve` and yields its grpc:// URI."""
    proc, port = start_flightdeck(trino_url, tmp_path_factory.mktemp("flightdeck"))
    yield f"grpc://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def trino_cursor(trino_url):
    """A DB-API cursor on Trino directly, as USER."""
    conn = trino.dbapi.connect(host="127.0.0.1", port=int(trino_url.rsplit(":", 1)[1]), user=USER)
    yield conn.cursor()
    conn.close()


@pytest.fixture(scope="module")
def conn(flightdeck):
    """An ADBC Flight SQL connection to the session's Flightdeck, as USER."""
    c = flight_sql.connect(flightdeck, db_kwargs={"username": USER, "password": PASSWORD})
    yield c
    c.close()


def self_signed(tmp: Path):
    """A certificate for localhost and 127.0.0.1, and its key."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="session")
def trino_protocol(trino_url, tmp_path_factory):
    """A Flightdeck serving Trino's client protocol over HTTPS with password
    authentication (Trino clients send passwords only over HTTPS): yields
    (port, certificate path)."""
    tmp = tmp_path_factory.mktemp("trino-protocol")
    cert, key = self_signed(tmp)
    proc, _ = start_flightdeck(trino_url, tmp, "--tls-cert", str(cert), "--tls-key", str(key))
    yield proc.trino_port, cert
    proc.terminate()
    proc.wait(timeout=10)


def trusting(cert):
    """An HTTP session that trusts `cert`, whatever REQUESTS_CA_BUNDLE says
    (requests lets that variable override a session's own setting)."""
    session = requests.Session()
    session.verify, session.trust_env = str(cert), False
    return session


def trino_protocol_connect(port, cert, **kwargs):
    """A `trino` DB-API connection to Flightdeck's Trino-protocol port, as USER."""
    return trino.dbapi.connect(
        host="localhost", port=port, user=USER, http_scheme="https", http_session=trusting(cert),
        auth=trino.auth.BasicAuthentication(USER, PASSWORD), **kwargs,
    )
