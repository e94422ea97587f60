"""Load test: signed ``/ask`` requests against a locally started Slack app, on loopback only.

The bot runs in a child process (``--cli``: ``quotebot run --platform slack``; default: the
adapter wired in-process by ``tests/e2e/slack_helpers``), its Web API calls and
response_url posts go to the local Slack API server (in a thread of this process), and
this process sends requests open-loop at ``--rate`` per second. Prints ack latency
p50/p90/p99/max, achieved throughput, and how long the answers took to arrive.

    .venv/bin/python benchmarks/slack_ack_load.py --requests 2000 --rate 200

Target: ack p99 <= 100 ms at 200 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.slack_api_server import SlackApiServer  # noqa: E402
from tests.e2e.slack_helpers import SignedClient, SlackBotProcess, bot_env, free_port, slash_body  # noqa: E402

MAX_REQUESTS = 20_000
MAX_SECONDS = 120.0
QUERIES = [
    "what did he say about the fermi paradox", "mars", "rockets and reuse", "artificial intelligence safety",
    "how to be useful", "war and human nature", "the roman empire", "kardashev scale", "starship",
    "first principles thinking", "video games", "aliens", "physics", "great filters", "digital superintelligence",
]


class ApiThread:
    """The local Slack API server on its own event loop, so load generation does not slow it down."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server: SlackApiServer | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = SlackApiServer()
        self.loop.run_until_complete(self.server.start())
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> SlackApiServer:
        self._thread.start()
        self._ready.wait(10)
        assert self.server is not None
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def load(base: str, server: SlackApiServer, n: int, rate: float, concurrency: int, timeout: float):
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    sent_at: dict[str, float] = {}
    limit = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        client = SignedClient(base, s)

        async def one(i: int) -> None:
            rid = uuid.uuid4().hex
            body = slash_body("/ask", QUERIES[i % len(QUERIES)], server.response_url(rid), user=f"U{i:06d}")
            async with limit:
                t = time.perf_counter()
                sent_at[rid] = t
                try:
                    status, _ = await client.send(body, form=True)
                    key = str(status)
                except (aiohttp.ClientError, TimeoutError) as e:
                    key = type(e).__name__
                latencies.append((time.perf_counter() - t) * 1000)
                statuses[key] = statuses.get(key, 0) + 1

        start = time.perf_counter()
        tasks = []
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() - start > MAX_SECONDS:
                break
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return latencies, statuses, sent_at, elapsed


async def answers(server: SlackApiServer, sent_at: dict[str, float], wait: float) -> list[float]:
    """Seconds from request to its response_url answer, waiting up to ``wait`` for stragglers."""
    deadline = time.perf_counter() + wait
    def done() -> int:
        return sum(1 for c in server.of("response_url") if c.path in sent_at)

    while time.perf_counter() < deadline and done() < len(sent_at):
        await asyncio.sleep(0.1)
    return [(c.at - sent_at[c.path]) * 1000 for c in server.of("response_url") if c.path in sent_at]


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (open loop)")
    ap.add_argument("--concurrency", type=int, default=400, help="most requests in flight")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--corpus", type=Path, default=ROOT / "data" / "transcripts")
    ap.add_argument("--cli", action="store_true", help="start `quotebot run --platform slack` instead")
    args = ap.parse_args()
    n = max(1, min(args.requests, MAX_REQUESTS))
    load_before = os.getloadavg()[0]

    api = ApiThread()
    server = api.start()
    tmp = Path(tempfile.mkdtemp(prefix="slack-bench-"))
    port = free_port()
    env = bot_env(tmp, server.api_url, port, QUOTEBOT_RATE_PER_MINUTE="0", LOG_LEVEL="WARNING",
                  QUOTEBOT_CORPUS=str(args.corpus))
    bot = ChildBot(env, port, tmp, args.cli)
    await bot.start()
    try:
        # Warm up: the first request pays for auth.test and connection set-up.
        async with aiohttp.ClientSession() as s:
            await SignedClient(bot.base, s).slash("/ask", "warm up", server.response_url("warmup"))
        latencies, statuses, sent_at, elapsed = await load(
            bot.base, server, n, args.rate, args.concurrency, args.timeout
        )
        answered = await answers(server, sent_at, wait=30.0)
    finally:
        await bot.stop()
        api.stop()
    ok = statuses.get("200", 0)
    print(f"slack ack load: {len(latencies)} signed /ask requests, target {args.rate:.0f}/s, "
          f"concurrency cap {args.concurrency}, corpus {args.corpus.name}, cpus {os.cpu_count()}, "
          f"load average before {load_before:.2f}")
    print(f"  throughput   {len(latencies) / elapsed:.1f} requests/s over {elapsed:.2f} s")
    print(f"  statuses     {dict(sorted(statuses.items()))}")
    print(f"  ack latency  p50 {pct(latencies, 50):.1f} ms  p90 {pct(latencies, 90):.1f} ms  "
          f"p99 {pct(latencies, 99):.1f} ms  max {max(latencies):.1f} ms  mean {statistics.fmean(latencies):.1f} ms")
    if answered:
        print(f"  answers      {len(answered)}/{len(sent_at)} posted to response_url; request->answer "
              f"p50 {pct(answered, 50):.0f} ms  p99 {pct(answered, 99):.0f} ms")
    else:
        print(f"  answers      0/{len(sent_at)} posted to response_url")
    verdict = "meets" if ok == len(latencies) and pct(latencies, 99) <= 100 else "misses"
    print(f"  target       p99 <= 100 ms at 200 requests/s: {verdict}")
    return 0


class ChildBot:
    """The bot in a child process, so its event loop is not shared with the load generator."""

    def __init__(self, env: dict[str, str], port: int, tmp: Path, cli: bool) -> None:
        self.env, self.port, self.tmp, self.cli = env, port, tmp, cli
        self.proc: asyncio.subprocess.Process | None = None
        self.base = f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
        env.update(self.env)
        log = open(self.tmp / "bot.log", "wb")  # noqa: SIM115 - handed to the child process
        if self.cli:
            cmd = [str(ROOT / ".venv" / "bin" / "quotebot"), "run", "--platform", "slack"]
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-child"]
        self.proc = await asyncio.create_subprocess_exec(*cmd, cwd=str(ROOT), env=env, stdout=log, stderr=log,
                                                         stdin=asyncio.subprocess.DEVNULL)
        log.close()
        probe = SlackBotProcess(self.env, self.port, proc=self.proc, log_path=self.tmp / "bot.log")
        await probe._wait_healthy(timeout=120)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 15)


async def serve_child() -> None:
    """Child-process entry: the adapter wired in-process, served until terminated."""
    import logging
    import signal

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    bot = SlackBotProcess(dict(os.environ), int(os.environ["PORT"]))
    await bot.start(in_process=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await bot.stop()


if __name__ == "__main__":
    if "--serve-child" in sys.argv:
        asyncio.run(serve_child())
        sys.exit(0)
    sys.exit(asyncio.run(main()))
