"""How busy the machine is, so benchmarks can tell their own CPU time from others'."""

from __future__ import annotations

import os
import resource


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
