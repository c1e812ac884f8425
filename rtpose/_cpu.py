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


def has_int8_dot_product(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this x86 CPU has a VNNI int8 dot product (``avx512_vnni`` or ``avx_vnni``), read
    from ``cpuinfo``; False where that file is missing (not Linux) or on other CPUs.

    Without VNNI, ONNX Runtime's x86 u8 x s8 kernels (``vpmaddubsw``) add pairs of products in
    int16 and can saturate: int8 models for such CPUs keep their weights in 7 bits
    (``reduce_range``). Arm CPUs have no such pairwise saturation and are not read here.
    """
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_vnni", "avx_vnni"})
    except OSError:
        pass
    return False
