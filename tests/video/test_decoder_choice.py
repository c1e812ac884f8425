"""The CPU decoder rule follows the committed measurement (benchmarks/bench_decoders.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtpose.video import CPU_DECODER_MS, fastest_cpu_decoder

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
NAMES = {"opencv": "OpenCV", "dali-cpu": "DALI-CPU"}


def newest_measurement() -> dict:
    files = sorted(RESULTS.glob("*-decoders.json"))
    assert files, f"no decoder measurement in {RESULTS}: run benchmarks/bench_decoders.py"
    return json.loads(files[-1].read_text())


def test_the_table_is_the_committed_measurement():
    measured = newest_measurement()["codecs"]
    assert set(measured) == set(CPU_DECODER_MS)
    for codec, by_decoder in measured.items():
        table = {NAMES[d]: round(e["mean_ms"], 2) for d, e in by_decoder.items() if e["supported"]}
        assert CPU_DECODER_MS[codec] == pytest.approx(table, abs=0.006), codec


def test_the_choice_is_the_fastest_measured_per_codec():
    for codec, by_decoder in newest_measurement()["codecs"].items():
        fastest = min((e["mean_ms"], d) for d, e in by_decoder.items() if e["supported"])[1]
        assert fastest_cpu_decoder(codec) == NAMES[fastest], codec


def test_one_decoder_for_all_codecs_only_when_it_wins_each(monkeypatch):
    import rtpose.video as video

    assert fastest_cpu_decoder() == "OpenCV"  # what the committed measurement says
    monkeypatch.setattr(video, "CPU_DECODER_MS", {"vp9": {"A": 1.0, "B": 2.0}, "h264": {"B": 3.0}})
    assert video.fastest_cpu_decoder("vp9") == "A"
    assert video.fastest_cpu_decoder("h264") == "B"
    assert video.fastest_cpu_decoder() is None
