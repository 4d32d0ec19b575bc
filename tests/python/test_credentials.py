"""Logging in with credentials of every shape, through every client.

One Flightdeck (`--auth password`) serves many users whose `user:password`
lengths cover every residue mod 3 (base64 padding of none, one or two `=`:
the ADBC driver sends Basic credentials unpadded, pyarrow and the JDBC
driver padded), and whose passwords hold `:`, `=`, spaces, quotes, `+`,
`/` and multi-byte UTF-8. Each logs in and runs `SELECT 1` and
`SELECT current_user` (the query must run on Trino as that very user)
through Python ADBC, the SQLAlchemy `flightdeck://` dialect, the Flight SQL
JDBC driver (tests/jdbc/LoginCheck.java, one JVM for all credentials) and
raw gRPC (pyarrow.flight, with Basic headers built padded and unpadded);
a wrong password must be refused with an authentication error every time.
"""

import base64
import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow.flight as flight
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from conftest import ROOT, start_flightdeck, statement_query

JAR = os.environ.get("FLIGHTDECK_JDBC_JAR", "")
# What Flightdeck answers for a wrong user name or password.
AUTH_ERROR = "invalid user name or password"


@dataclasses.dataclass(frozen=True)
class Cred:
    label: str
    user: str
    password: str

    @property
    def basic(self) -> bytes:
        return f"{self.user}:{self.password}".encode()

    @property
    def wrong(self) -> str:
        """A password that is not this user's (same length in characters)."""
        if not self.password:
            return "x"
        last = self.password[-1]
        return self.password[:-1] + ("!" if last != "!" else "?")

    @property
    def id(self) -> str:
        n = len(self.basic)
        return f"{self.label}-{n}b-mod{n % 3}"


def _credentials() -> list:
    out = []
    # `user:password` of every length from 2 to 41 bytes. The password
    # alphabet includes `?`, `>` and `~`, whose bytes make `/` and `+` in
    # the base64 text.
    out.append(Cred("min", "q", ""))
    out.append(Cred("min", "r", "s"))
    alphabet = "a1?>~Zq-"
    for n in range(0, 37):
        out.append(Cred("sweep", f"p{n:02d}", "".join(alphabet[i % len(alphabet)] for i in range(n))))
    # User names of every length from 1 to 12 and some longer, one password.
    for n in range(1, 13):
        out.append(Cred("userlen", "abcdefghijkl"[:n], "pw"))
    out.append(Cred("userlen", "x" * 40, "pw"))
    # Passwords with the characters that break naive parsing.
    special = {
        "colon": ":",
        "colon-lead": ":lead",
        "colon-trail": "trail:",
        "colon-mid": "mid:dle",
        "colons-many": "a:b::c:",
        "colons-only": ":::",
        "colon-both": ":both:",
        "eq": "=",
        "eqeq": "==",
        "eq-trail": "ends=",
        "eqeq-trail": "ends==",
        "eq-lead": "=lead",
        "eq-mid": "a=b==c",
        "space": " ",
        "space-lead": " lead",
        "space-trail": "trail ",
        "space-mid": "in side",
        "spaces": "  two  spaces  ",
        "tab": "tab\there",
        "umlaut": "pässwörd",
        "cjk": "密码",
        "cjk-long": "这是一个很长的密码",
        "emoji": "emoji😀!",
        "mixed-utf8": "ünï:cödé=",
        "plus": "+",
        "slash": "/",
        "plus-slash": "a+b/c",
        "plus-slash-many": "++//++",
        "squote": "'",
        "dquote": '"',
        "quotes": "it's \"quoted\"",
        "backtick": "`back`",
        "backslash": "back\\slash\\",
        "percent": "%41%2F%",
        "url-chars": "@#?&/;,",
        "basic-lookalike": "Basic abc==",
        "long-64": "Lo:ng=" * 10 + "pass",
    }
    for label, password in special.items():
        out.append(Cred(f"pw-{label}", f"pw-{label}", password))
    # User names of several shapes (no `:`, which ends the name in the
    # users file; no leading or trailing blanks, which the file trims).
    users = {
        "dot": "first.last",
        "at": "someone@example.com",
        "space": "with space",
        "upper": "UPPER",
        "mixed": "MiXeD.Case-99",
        "underscore": "under_score",
        "dash": "-dash-",
        "digits": "1234567",
        "eq": "user=name==",
        "plus-slash": "u+s/er",
        "quote": "o'brien",
        "backslash": "dom\\user",
    }
    for label, user in users.items():
        out.append(Cred(f"user-{label}", user, "user pässwörd:" + label))
    # Every shape above, and the length of `user:password` covers each
    # residue mod 3 many times.
    assert {len(c.basic) % 3 for c in out} == {0, 1, 2}
    assert len({c.user for c in out}) == len(out), "user names are unique"
    return out


CREDS = _credentials()
# Non-ASCII user names: Trino receives its user in an HTTP header.
NON_ASCII_USERS = [Cred("user-utf8-latin", "josé", "pw"), Cred("user-utf8-cjk", "用户", "密码")]


def _ids(creds):
    return [c.id for c in creds]


@pytest.fixture(scope="module")
def server(trino_url, tmp_path_factory):
    """One Flightdeck for every user; the JDBC run starts at once, in the
    background, over all credentials (JVM start-up is slow)."""
    tmp = tmp_path_factory.mktemp("credentials")
    users = [(c.user, c.password) for c in CREDS + NON_ASCII_USERS]
    proc, port = start_flightdeck(trino_url, tmp, users=users)
    jdbc = _start_jdbc(port, tmp)
    yield {"port": port, "uri": f"grpc://127.0.0.1:{port}", "jdbc": jdbc}
    if jdbc is not None and jdbc[0].poll() is None:
        jdbc[0].kill()
    proc.terminate()
    proc.wait(timeout=10)


def _is_auth_error(message: str) -> bool:
    return AUTH_ERROR in message and "unauthenticated" in message.lower()


# Python ADBC

def _adbc_connect(uri, user, password):
    return flight_sql.connect(uri, db_kwargs={"username": user, "password": password}, autocommit=True)


def _adbc_scalar(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.mark.parametrize("cred", CREDS, ids=_ids(CREDS))
def test_adbc_login(server, cred):
    with _adbc_connect(server["uri"], cred.user, cred.password) as conn:
        assert _adbc_scalar(conn, "SELECT 1") == [(1,)]
        assert _adbc_scalar(conn, "SELECT current_user") == [(cred.user,)]


@pytest.mark.parametrize("cred", CREDS, ids=_ids(CREDS))
def test_adbc_wrong_password_is_refused(server, cred):
    with pytest.raises(adbc_driver_manager.Error) as e:
        with _adbc_connect(server["uri"], cred.user, cred.wrong) as conn:
            _adbc_scalar(conn, "SELECT 1")
    assert _is_auth_error(str(e.value)), str(e.value)


# SQLAlchemy `flightdeck://` (ADBC underneath), credentials percent-encoded in the URL

def _engine(port, user, password):
    url = f"flightdeck://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}/tpch/tiny"
    assert sa.engine.make_url(url).password == password
    return sa.create_engine(url, poolclass=NullPool)


@pytest.mark.parametrize("cred", CREDS, ids=_ids(CREDS))
def test_sqlalchemy_login(server, cred):
    engine = _engine(server["port"], cred.user, cred.password)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            assert conn.execute(sa.text("SELECT current_user")).scalar() == cred.user
    finally:
        engine.dispose()


@pytest.mark.parametrize("cred", CREDS, ids=_ids(CREDS))
def test_sqlalchemy_wrong_password_is_refused(server, cred):
    engine = _engine(server["port"], cred.user, cred.wrong)
    try:
        with pytest.raises(sa.exc.DBAPIError) as e:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1")).scalar()
        assert _is_auth_error(str(e.value)), str(e.value)
    finally:
        engine.dispose()


# Flight SQL JDBC driver: tests/jdbc/LoginCheck.java over all credentials in one JVM

def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _start_jdbc(port, tmp: Path):
    java = shutil.which("java")
    if not (java and JAR and Path(JAR).exists()):
        return None
    creds = tmp / "jdbc-credentials"
    creds.write_text("".join(f"{_b64(c.user)}\t{_b64(c.password)}\t{_b64(c.wrong)}\n" for c in CREDS + NON_ASCII_USERS))
    out, err = tmp / "jdbc.out", tmp / "jdbc.err"
    url = f"jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false"
    proc = subprocess.Popen(
        [java, "--add-opens=java.base/java.nio=ALL-UNNAMED", "-cp", JAR, str(ROOT / "tests/jdbc/LoginCheck.java"), url, str(creds)],
        stdout=open(out, "w"), stderr=open(err, "w"),
    )
    return proc, out, err


@pytest.fixture(scope="module")
def jdbc_results(server):
    assert server["jdbc"] is not None, "scripts/test.sh provides java and the JDBC driver (FLIGHTDECK_JDBC_JAR)"
    proc, out, err = server["jdbc"]
    try:
        proc.wait(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err.read_text()[-3000:]
    results = {}
    for line in out.read_text().splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            index = r.pop("index")
            results[index] = {k: None if v is None else base64.b64decode(v).decode() for k, v in r.items()}
    assert len(results) == len(CREDS + NON_ASCII_USERS), err.read_text()[-3000:]
    return results


@pytest.mark.parametrize("index", range(len(CREDS)), ids=_ids(CREDS))
def test_jdbc_login(jdbc_results, index):
    cred, got = CREDS[index], jdbc_results[index]
    assert got["error"] is None, got["error"]
    assert got["one"] == "1"
    assert got["current_user"] == cred.user


@pytest.mark.parametrize("index", range(len(CREDS)), ids=_ids(CREDS))
def test_jdbc_wrong_password_is_refused(jdbc_results, index):
    got = jdbc_results[index]
    assert got["wrong_error"] is not None, "logged in with a wrong password"
    assert _is_auth_error(got["wrong_error"]), got["wrong_error"]


# Raw gRPC with pyarrow.flight: Handshake, then a statement with the bearer token

def _run(client, headers, sql):
    """GetFlightInfo(CommandStatementQuery) and DoGet, with `headers`."""
    options = flight.FlightCallOptions(headers=headers)
    info = client.get_flight_info(statement_query(sql), options)
    return client.do_get(info.endpoints[0].ticket, options).read_all().to_pylist()


class _TokenFromHandshake(flight.ClientAuthHandler):
    """Reads the token from Handshake's reply; the credentials travel in
    the call's own `authorization` header."""

    def __init__(self):
        super().__init__()
        self.token = b""

    def authenticate(self, outgoing, incoming):
        self.token = incoming.read()

    def get_token(self):
        return self.token


def _raw_handshake(uri, basic: bytes, padded: bool) -> bytes:
    text = base64.b64encode(basic)
    if not padded:
        text = text.rstrip(b"=")
    client = flight.FlightClient(uri)
    handler = _TokenFromHandshake()
    client.authenticate(handler, options=flight.FlightCallOptions(headers=[(b"authorization", b"Basic " + text)]))
    return client, handler.token


@pytest.mark.parametrize("cred", CREDS, ids=_ids(CREDS))
def test_flight_authenticate_basic_token(server, cred):
    client = flight.FlightClient(server["uri"])
    header = client.authenticate_basic_token(cred.user, cred.password)
    assert header[0] == b"authorization" and header[1].startswith(b"Bearer "), header
    assert _run(client, [header], "SELECT current_user AS u") == [{"u": cred.user}]
    with pytest.raises(flight.FlightUnauthenticatedError) as e:
        flight.FlightClient(server["uri"]).authenticate_basic_token(cred.user, cred.wrong)
    assert AUTH_ERROR in str(e.value), str(e.value)


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("cred", CREDS, ids=_ids(CREDS))
def test_raw_basic_header(server, cred, padded):
    client, token = _raw_handshake(server["uri"], cred.basic, padded)
    assert token, "Handshake answered no token"
    assert _run(client, [(b"authorization", b"Bearer " + token)], "SELECT current_user AS u") == [{"u": cred.user}]
    wrong = f"{cred.user}:{cred.wrong}".encode()
    with pytest.raises(flight.FlightUnauthenticatedError) as e:
        _raw_handshake(server["uri"], wrong, padded)
    assert AUTH_ERROR in str(e.value), str(e.value)


def test_unknown_user_and_another_users_password_are_refused(server):
    a, b = CREDS[0], CREDS[-1]
    for user, password in [("nobody", "pw"), (a.user, b.password), (b.user, a.password), (a.user.upper() + "x", a.password)]:
        with pytest.raises(flight.FlightUnauthenticatedError) as e:
            flight.FlightClient(server["uri"]).authenticate_basic_token(user, password)
        assert AUTH_ERROR in str(e.value), str(e.value)


# Non-ASCII user names. Trino takes its user from the `X-Trino-User` HTTP
# header; whatever Flightdeck does with such names, a query must never run
# as a user other than the one who logged in (the name's UTF-8 bytes read
# as Latin-1, say). Refusing the name with a clear error is acceptable.

def _query_as_self_or_refused(run):
    try:
        got = run()
    except Exception as e:  # a refusal is fine; a wrong identity is not
        return None, str(e)
    return got, None


@pytest.mark.parametrize("cred", NON_ASCII_USERS, ids=_ids(NON_ASCII_USERS))
def test_non_ascii_user_never_runs_as_someone_else_adbc(server, cred):
    def run():
        with _adbc_connect(server["uri"], cred.user, cred.password) as conn:
            return _adbc_scalar(conn, "SELECT current_user")[0][0]

    got, error = _query_as_self_or_refused(run)
    assert error is not None or got == cred.user, f"logged in as {cred.user!r}, Trino ran the query as {got!r}"


@pytest.mark.parametrize("index", range(len(NON_ASCII_USERS)), ids=_ids(NON_ASCII_USERS))
def test_non_ascii_user_never_runs_as_someone_else_jdbc(jdbc_results, index):
    cred, got = NON_ASCII_USERS[index], jdbc_results[len(CREDS) + index]
    assert got["error"] is not None or got["current_user"] == cred.user, (
        f"logged in as {cred.user!r}, Trino ran the query as {got['current_user']!r}"
    )
