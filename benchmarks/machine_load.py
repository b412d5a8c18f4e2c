"""How busy the machine is, so benchmarks can tell their own CPU time from others'."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time


def busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy (Linux), to tell others' load."""
    try:
        with open("/proc/stat") as stream:
            fields = [int(v) for v in stream.readline().split()[1:]]
    except OSError:
        return None
    busy = sum(fields[:8]) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_json(command: list[str], timeout: float, env: dict | None = None) -> dict:
    """Run a measuring process that prints its result as JSON on its last line.

    Returns that result with ``status`` "ok", ``wall_s`` and ``others``: the share of the
    machine's CPUs that other processes used meanwhile (0 on an idle machine; None where
    the machine does not say). A timeout or a failure gives ``status`` saying which."""
    busy, mine = busy_cpu_s(), children_cpu_s()
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env=env)
    except subprocess.TimeoutExpired:
        return {"status": f"timeout after {timeout:g} s"}
    wall = time.perf_counter() - start
    others = None
    if busy is not None:
        others = max(0.0, (busy_cpu_s() - busy) - (children_cpu_s() - mine)) / (
            wall * (os.cpu_count() or 1))
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"status": f"error: {last}", "wall_s": wall}
    return {"status": "ok", **json.loads(lines[-1]), "wall_s": wall, "others": others}
