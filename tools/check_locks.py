"""Fail when the runtime lock and the dev lock pin a shared package to different versions.

`make run` installs requirements.lock alone and `make test` installs requirements-dev.lock, so a
package pinned differently in the two would be tested at one version and run at another.
Usage: python tools/check_locks.py [RUNTIME_LOCK DEV_LOCK]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def _pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise SystemExit(f"{path}: not an exact pin: {line!r}")
        pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version.strip()
    return pins


def disagreements(runtime: Path, dev: Path) -> list[str]:
    run_pins, dev_pins = _pins(runtime), _pins(dev)
    problems = [
        f"{name}: {runtime.name} pins {run_pins[name]}, {dev.name} pins {dev_pins[name]}"
        for name in sorted(run_pins.keys() & dev_pins.keys())
        if run_pins[name] != dev_pins[name]
    ]
    problems += [
        f"{name}: pinned in {runtime.name} but missing from {dev.name}"
        for name in sorted(run_pins.keys() - dev_pins.keys())
    ]
    return problems


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    runtime, dev = (
        (Path(argv[0]), Path(argv[1]))
        if len(argv) == 2
        else (root / "requirements.lock", root / "requirements-dev.lock")
    )
    problems = disagreements(runtime, dev)
    for problem in problems:
        print(f"lock drift: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
