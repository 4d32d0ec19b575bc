"""A TCP proxy between Flightdeck and Trino that injects faults.

It runs as its own process, so that the many client threads of a load test
do not share its interpreter lock and slow it down, and is driven by
one-line commands on a control port:

    pass            forward everything at once (the default)
    delay SECS      wait SECS before forwarding each chunk Trino sends (slow Trino)
    connect SECS    wait SECS before connecting each new connection upstream
    cut             close every connection and the listener: new connections
                    are refused, as when Trino stops
    resume          listen again on the same port
    stats           counters only

Every command answers one JSON line with the proxy's counters.
`FaultProxy` is the test-side handle: it starts the process and sends commands.
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys

CHUNK = 64 * 1024


class _Proxy:
    def __init__(self, host: str, port: int, upstream: tuple[str, int]):
        self.host, self.port, self.upstream = host, port, upstream
        self.server: asyncio.base_events.Server | None = None
        self.delay = 0.0
        self.connect_delay = 0.0
        self.cut = False
        self.conns: set[asyncio.StreamWriter] = set()
        self.accepted = 0
        self.refused_upstream = 0
        self.bytes_down = 0
        self.bytes_up = 0

    async def listen(self):
        # The port is fixed after the first bind: Flightdeck's --trino-url
        # names it, and Trino's nextUri links carry it.
        self.server = await asyncio.start_server(self._client, self.host, self.port, reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        if self.cut:
            writer.transport.abort()
            return
        self.accepted += 1
        if self.connect_delay:
            await asyncio.sleep(self.connect_delay)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.refused_upstream += 1
            writer.transport.abort()
            return
        pair = {writer, up_writer}
        self.conns |= pair
        try:
            await asyncio.gather(self._pump(reader, up_writer, False, pair), self._pump(up_reader, writer, True, pair))
        finally:
            self.conns -= pair

    async def _pump(self, reader, writer, from_trino: bool, pair):
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if from_trino and self.delay:
                    await asyncio.sleep(self.delay)
                if self.cut:
                    break
                writer.write(data)
                await writer.drain()
                if from_trino:
                    self.bytes_down += len(data)
                else:
                    self.bytes_up += len(data)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # HTTP/1.1 has no use for half-closed connections: when one side
            # ends, end both, like a server process that goes away.
            for w in pair:
                w.transport.abort() if self.cut else w.close()

    async def command(self, line: str) -> dict:
        words = line.split()
        cmd = words[0] if words else "stats"
        if cmd == "pass":
            self.delay = self.connect_delay = 0.0
        elif cmd == "delay":
            self.delay = float(words[1])
        elif cmd == "connect":
            self.connect_delay = float(words[1])
        elif cmd == "cut":
            self.cut = True
            if self.server is not None:
                self.server.close()
                self.server = None
            for w in list(self.conns):
                w.transport.abort()  # an RST, as from a killed process
            self.conns.clear()
        elif cmd == "resume":
            if self.server is None:
                await self.listen()
            self.cut = False
        elif cmd != "stats":
            return {"error": f"unknown command {cmd!r}"}
        return {
            "port": self.port, "cut": self.cut, "delay": self.delay, "connect_delay": self.connect_delay,
            "open": len(self.conns) // 2, "accepted": self.accepted, "refused_upstream": self.refused_upstream,
            "bytes_down": self.bytes_down, "bytes_up": self.bytes_up,
        }

    async def control(self, reader, writer):
        try:
            while line := await reader.readline():
                writer.write((json.dumps(await self.command(line.decode())) + "\n").encode())
                await writer.drain()
        finally:
            writer.close()


async def _main(args):
    host, port = args.upstream.rsplit(":", 1)
    proxy = _Proxy("127.0.0.1", args.port, (host, int(port)))
    await proxy.listen()
    control = await asyncio.start_server(proxy.control, "127.0.0.1", 0)
    print(json.dumps({"port": proxy.port, "control": control.sockets[0].getsockname()[1]}), flush=True)
    # Exit with the parent: the test closes stdin (or dies).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    os._exit(0)  # no orderly teardown of the connections still open


class FaultProxy:
    """Test-side handle on a proxy process in front of `upstream` (host:port)."""

    def __init__(self, upstream: str):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--upstream", upstream],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        hello = json.loads(self.proc.stdout.readline())
        self.port = hello["port"]
        self.url = f"http://127.0.0.1:{self.port}"
        self._ctl = socket.create_connection(("127.0.0.1", hello["control"]), timeout=10)
        self._ctl_file = self._ctl.makefile("rw")

    def send(self, line: str) -> dict:
        self._ctl_file.write(line + "\n")
        self._ctl_file.flush()
        answer = json.loads(self._ctl_file.readline())
        if "error" in answer:
            raise ValueError(answer["error"])
        return answer

    def passthrough(self):
        return self.send("pass")

    def delay(self, secs: float):
        return self.send(f"delay {secs}")

    def cut(self):
        return self.send("cut")

    def resume(self):
        return self.send("resume")

    def stats(self):
        return self.send("stats")

    def close(self):
        self._ctl.close()
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", default="127.0.0.1:8080")
    p.add_argument("--port", type=int, default=0)
    asyncio.run(_main(p.parse_args()))
