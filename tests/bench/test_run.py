"""The bench runner without running a stream: its report's machine / version keys, the version's
one definition, config validation, and the table and scaling summaries of a report."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rtpose
from rtpose import _version
from rtpose.bench.run import (
    RANDOM_NOTE,
    BenchConfig,
    _scaling,
    format_table,
    machine_info,
    versions,
)

ROOT = Path(__file__).parents[2]


def test_versions_and_machine_keep_their_json_keys():
    assert set(versions()) == {
        "rtpose",
        "python",
        "numpy",
        "onnxruntime",
        "torch",
        "opencv",
        "dali",
    }
    assert versions()["rtpose"] == rtpose.__version__
    info = machine_info()
    assert set(info) == {"cpu", "cores", "usable_cores", "gpu", "os"} and info["cores"] >= 1
    assert 1 <= info["usable_cores"] <= info["cores"]


def test_the_version_is_defined_once_in_a_leaf_module_and_matches_pyproject():
    assert rtpose.__version__ is _version.__version__
    # rtpose/__init__.py re-exports it instead of defining its own
    tree = ast.parse((ROOT / "rtpose" / "__init__.py").read_text())
    assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}  # fmt: skip
    assert "__version__" not in assigned
    # the package metadata reads it from there: pyproject.toml declares it dynamic
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]', pyproject, re.M)
    assert 'version = { attr = "rtpose._version.__version__" }' in pyproject
    assert not re.search(r"^version = \"", pyproject, re.M)  # no literal version


def test_the_cli_front_end_imports_neither_the_cli_main_nor_the_package_root():
    tree = ast.parse((ROOT / "rtpose" / "cli" / "bench.py").read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "rtpose" not in imported and "rtpose.cli.main" not in imported
    assert "rtpose.bench.run" in imported


def test_importing_the_runner_loads_no_inference_runtime():
    code = (
        "import sys, rtpose.bench.run, rtpose.cli.bench; "
        "print([m for m in ('torch', 'onnxruntime', 'tensorrt', 'cupy', 'nvidia.dali') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"people": ()}, "people must be ints >= 1"),
        ({"streams": (0,)}, "streams must be ints >= 1"),
        ({"frames": 0}, "frames must be >= 1"),
        ({"warmup": -1}, "warmup must be >= 0"),
        ({"fps": 0.0}, "fps must be > 0"),
        ({"device": "tpu"}, "device must be 'cpu', 'gpu' or 'auto', got 'tpu'"),
    ],
)
def test_config_refuses_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        BenchConfig(**kwargs)


def _row(people: int, streams: int, fps: float) -> dict:
    return {
        "people": people, "streams": streams, "backend": "onnxruntime", "frames": 3,
        "elapsed_s": 1.0, "fps": fps, "latency_ms": {"p50": 12.0, "p99": 20.0, "mean": 13.0},
        "stages_p50_ms": {"decode": 1.0, "model": 8.0}, "dropped": 0,
        "persons_per_frame": {"mean": float(people), "min": people, "max": people},
    }  # fmt: skip


def test_scaling_and_table_of_a_report():
    results = [_row(1, 1, 40.0), _row(20, 1, 20.0), _row(1, 2, 30.0)]
    scaling = _scaling(results)
    # one people count for 2 streams: no ratio there
    assert scaling == {"streams=1": {"frame_time_ratio": 2.0, "people": [1, 20]}}
    report = {
        "config": {"model": "yolo11n-pose", "detector": "yolo11n-pose", "top_down": False,
                   "frames": 3, "warmup": 1, "live": False},
        "machine": {"cpu": "CPU", "cores": 2, "gpu": None, "load_average_1m": [0.1, 0.2]},
        "note": RANDOM_NOTE,
        "scaling": scaling,
        "results": results,
    }  # fmt: skip
    table = format_table(report)
    assert "yolo11n-pose on onnxruntime" in table and "offline" in table
    assert "RANDOM-INIT" in table and "GPU none" in table
    assert "frame time at 20 people = 2.00x the time at 1" in table
    assert len(table.splitlines()) == 3 + 1 + len(results) + 1
