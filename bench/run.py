"""`make bench`: every benchmark in turn, printing numbers (also saved to bench/results/)."""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psutil


def _auth(duration: float) -> list[str]:
    from bench import auth_bench

    return auth_bench.main(duration)


def _rest(duration: float) -> list[str]:
    from bench import rest_bench

    return rest_bench.main(duration, workers=1) + rest_bench.main(duration, workers=2)


def _sales(duration: float) -> list[str]:
    from bench import sales_bench

    return sales_bench.main(duration, workers=2)


def _capacity(duration: float) -> list[str]:
    from bench import capacity_bench

    return capacity_bench.main(duration)


def _sale_ceiling(duration: float) -> list[str]:
    from bench import sale_ceiling

    # Four phases per round on two servers, twice each: a quarter of the suite's duration each.
    return sale_ceiling.main(max(3.0, duration / 4))


def _storage(duration: float) -> list[str]:
    from bench import storage_bench
    from bench.stack import stack

    with stack(PB_RATE_LIMIT_PER_MINUTE="1000000000") as s:
        token = storage_bench.sign_in(s.server.url, s.server.anon_key, None, None)
        results = storage_bench.measure(s.server.url, s.server.anon_key, token, iterations=50)
        return [r.line() for r in results]


def _realtime(duration: float) -> list[str]:
    from bench import realtime_bench
    from bench.stack import stack

    env = {"PB_RATE_LIMIT_PER_MINUTE": "1000000000", "PB_RATE_LIMIT_SIGN_UP_PER_MINUTE": "1000000"}
    with stack(**env) as s:
        assert s.server.proc is not None
        return realtime_bench.main(
            [
                "--url",
                s.server.url,
                "--anon-key",
                s.server.anon_key,
                "--server-pid",
                str(s.server.proc.pid),
                "--duration",
                str(duration),
            ]
        )


def _ratelimit(duration: float) -> list[str]:
    from bench import ratelimit_bench

    return ratelimit_bench.main()


def _rest_attack(duration: float) -> list[str]:
    from bench import rest_attack_bench

    return rest_attack_bench.main(min(duration, 10.0))


def _jobs(duration: float) -> list[str]:
    from bench import jobs_bench

    return jobs_bench.main()


def _receipts(duration: float) -> list[str]:
    from bench import receipts_bench

    return receipts_bench.main()


def _app(duration: float) -> list[str]:
    # The app's benchmark drives Debian's Chromium; it lives beside the app's browser tests.
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "tests" / "app" / "bench_app.py"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=900
    )
    return done.stdout.strip().splitlines()


SUITES: dict[str, Callable[[float], list[str]]] = {
    "auth": _auth,
    "rest": _rest,
    "sales": _sales,
    "capacity": _capacity,
    "sale_ceiling": _sale_ceiling,
    "storage": _storage,
    "realtime": _realtime,
    "ratelimit": _ratelimit,
    "rest_attack": _rest_attack,
    "jobs": _jobs,
    "receipts": _receipts,
    "app": _app,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(SUITES), help="comma-separated suites")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per load phase")
    args = parser.parse_args()
    header = (
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}; load generator on the same machine"
    )
    out = [header]
    print(header, flush=True)
    for name in args.only.split(","):
        started = time.perf_counter()
        print(f"\n## {name}", flush=True)
        out.append(f"\n## {name}")
        for line in SUITES[name](args.duration):
            print(line, flush=True)
            out.append(line)
        print(f"({name} took {time.perf_counter() - started:.0f} s)", flush=True)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"{datetime.now(UTC):%Y%m%dT%H%M%S}.txt").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
