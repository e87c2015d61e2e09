"""Small real jobs for the runner and registry tests, run as `python testjob.py MODE ...`.

Modes:
    ok RESULT [N]        print N progress lines, write a valid result to RESULT, exit 0
    fail                 print a few lines to stderr, exit 3
    hang PIDFILE [term]  start a grandchild, write "child grandchild" PIDs, print one progress
                         line, then sleep forever; with `term` both ignore SIGTERM
    flood MB             write MB megabytes to stdout and to stderr, then one 1 MB line
    badresult RESULT     write a result that is JSON but breaks the schema
    notjson RESULT       write a result that is not JSON
    orphan PIDFILE       start a grandchild, write "child grandchild" PIDs, exit 0 at once
    mixed                print progress-like lines that are not valid progress events
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn


def _progress(done: int, total: int, message: str | None = None) -> None:
    event: dict[str, object] = {"event": "progress", "done": done, "total": total}
    if message is not None:
        event["message"] = message
    print(json.dumps(event), flush=True)


def _sleep_forever() -> NoReturn:
    while True:
        time.sleep(3600)


def main(argv: list[str]) -> int:
    """Run the mode named by argv[0]; return the exit code."""
    mode, rest = argv[0], argv[1:]
    if mode == "ok":
        count = int(rest[1]) if len(rest) > 1 else 0
        print("starting ok job")
        for i in range(1, count + 1):
            _progress(i, count, f"step {i}")
            print(f"plain line {i}")
        Path(rest[0]).write_text(json.dumps({"answer": 42, "label": "ok"}), encoding="utf-8")
        return 0
    if mode == "fail":
        for i in range(5):
            print(f"stderr line {i}", file=sys.stderr)
        print("fatal: the job broke on purpose", file=sys.stderr)
        return 3
    if mode == "hang":
        ignore_term = len(rest) > 1 and rest[1] == "term"
        code = "import signal, time\n"
        if ignore_term:
            code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        code += "while True: time.sleep(3600)\n"
        if ignore_term:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen([sys.executable, "-c", code])
        Path(rest[0]).write_text(f"{os.getpid()} {grandchild.pid}", encoding="utf-8")
        _progress(0, 1, "spawned")
        _sleep_forever()
    if mode == "flood":
        line = b"x" * 1023 + b"\n"
        block = line * 1024
        for _ in range(int(rest[0])):
            sys.stdout.buffer.write(block)
            sys.stderr.buffer.write(block)
        sys.stdout.buffer.write(b"y" * (1024 * 1024))
        sys.stdout.buffer.write(b"\nlast line\n")
        sys.stdout.flush()
        return 0
    if mode == "badresult":
        Path(rest[0]).write_text(json.dumps({"answer": "many"}), encoding="utf-8")
        return 0
    if mode == "notjson":
        Path(rest[0]).write_text("answer = 42\n", encoding="utf-8")
        return 0
    if mode == "orphan":
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        Path(rest[0]).write_text(f"{os.getpid()} {grandchild.pid}", encoding="utf-8")
        return 0
    if mode == "mixed":
        print('{"event": "progress", "done": "three", "total": 5}')
        print('{"event": "progress", "done": 6, "total": 5}')
        print('{"event": "other", "done": 1, "total": 5}')
        print('{"event": "progress", "done": 1}')
        print("{not json}")
        print('  {"event": "progress", "done": 2, "total": 5, "extra": 1}  ')
        return 0
    if mode == "started":
        _progress(0, 1, "started")
        return 0
    print(f"unknown mode {mode!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
