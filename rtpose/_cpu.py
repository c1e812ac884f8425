"""The CPU cores this process may use: the one count every CPU thread pool is sized from.

``os.cpu_count()`` counts the machine's cores, not the ones this process is allowed to run on
(``taskset``, cgroup cpusets, container CPU pinning). ONNX Runtime's default pool also sizes
itself from the machine and pins its threads, escaping the process's CPU mask: under
``taskset -c 0`` on a 2-core machine its default ran YOLO11n-pose at 21 FPS on both cores,
against 13.3 FPS with one thread on the one allowed core. So rtpose passes this count
explicitly.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores in this process's CPU affinity mask (``os.sched_getaffinity``; ``os.cpu_count``
    where the platform has no affinity call), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)
