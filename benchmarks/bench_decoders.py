"""CPU video decoders compared per codec on the sample video: what ``open_source`` should pick.

Decodes every frame of the sample video (VP9) and of two re-encodes made here with PyAV
(H.264 / libx264 in .mp4, MJPEG in .avi; same size and frame count) with each CPU decoder that
handles the codec: ``OpenCVSource`` (FFmpeg) and ``DALISource(device="cpu")``. Times include
what the pipeline pays per frame (the Frame objects rtpose hands on). Decoders alternate for
``--rounds`` rounds; the median round is reported. Writes JSON to ``benchmarks/results/``.

    python benchmarks/bench_decoders.py [--video PATH] [--rounds 3] [--out FILE]

The decoder preference in ``rtpose/video/__init__.py`` (``CPU_DECODER_MS``) follows the
committed result; ``tests/video/test_decoder_choice.py`` fails when they disagree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from rtpose.bench.run import cpu_name, machine_info, versions


def reencode(src: str, dst: Path, codec: str) -> Path:
    """The frames of ``src`` re-encoded with PyAV: ``"h264"`` (libx264) or ``"mjpeg"``."""
    import av

    with av.open(src) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        stream = out.add_stream("libx264" if codec == "h264" else "mjpeg", rate=30)
        stream.width, stream.height = vin.codec_context.width, vin.codec_context.height
        stream.pix_fmt = "yuv420p" if codec == "h264" else "yuvj420p"
        for frame in inp.decode(vin):
            for packet in stream.encode(frame.reformat(format=stream.pix_fmt)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def decode_all(decoder: str, path: Path) -> dict:
    """Per-frame decode times (ms) of every frame and the time to the first frame."""
    from rtpose.video import DALISource, OpenCVSource

    t0 = time.perf_counter()
    source = OpenCVSource(str(path)) if decoder == "opencv" else DALISource(str(path), device="cpu")
    times, first = [], None
    with source:
        it = iter(source)
        while True:
            t = time.perf_counter()
            frame = next(it, None)
            if frame is None:
                break
            np.asarray(frame.image)  # the host array the pipeline reads
            now = time.perf_counter()
            if first is None:
                first = (now - t0) * 1e3
            else:
                times.append((now - t) * 1e3)
    return {"frames": len(times) + 1, "first_frame_ms": first, "ms": times}


def supported(decoder: str, codec: str) -> bool:
    from rtpose.video.dali import CPU_CODECS

    return decoder == "opencv" or codec in CPU_CODECS


def main() -> None:
    from rtpose.assets import asset_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", default=str(asset_path("demo.mp4")))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rtpose-decoders-") as tmp:
        clips = {
            "vp9": Path(args.video),
            "h264": reencode(args.video, Path(tmp) / "h264.mp4", "h264"),
            "mjpeg": reencode(args.video, Path(tmp) / "mjpeg.avi", "mjpeg"),
        }
        runs: dict[str, dict[str, list[dict]]] = {c: {} for c in clips}
        for r in range(args.rounds):
            for codec, path in clips.items():
                order = ("opencv", "dali-cpu") if r % 2 == 0 else ("dali-cpu", "opencv")
                for decoder in order:
                    if not supported(decoder.removesuffix("-cpu"), codec):
                        continue
                    run = decode_all(decoder.removesuffix("-cpu"), path)
                    runs[codec].setdefault(decoder, []).append(run)
                    print(f"round {r + 1} {codec:6s} {decoder:9s} "
                          f"{np.mean(run['ms']):6.2f} ms/frame", flush=True)  # fmt: skip
    result: dict = {"codecs": {}}
    for codec, by_decoder in runs.items():
        entry = {}
        for decoder in ("opencv", "dali-cpu"):
            rounds = by_decoder.get(decoder)
            if not rounds:
                entry[decoder] = {"supported": False}
                continue
            means = [float(np.mean(x["ms"])) for x in rounds]
            mid = rounds[int(np.argsort(means)[len(means) // 2])]
            entry[decoder] = {
                "supported": True,
                "mean_ms": float(np.mean(mid["ms"])),
                "p50_ms": float(np.percentile(mid["ms"], 50)),
                "p95_ms": float(np.percentile(mid["ms"], 95)),
                "first_frame_ms": mid["first_frame_ms"],
                "frames": mid["frames"],
                "round_means_ms": means,
            }
        result["codecs"][codec] = entry
    result.update(
        what="cpu-decoders",
        date=dt.date.today().isoformat(),
        video=Path(args.video).name,
        rounds=args.rounds,
        machine={**machine_info(), "cpu": cpu_name(), "usable_cores": len(os.sched_getaffinity(0))},
        versions=versions(),
    )
    out = args.out or Path(__file__).parent / "results" / (
        f"{result['date']}-cpu{len(os.sched_getaffinity(0))}-decoders.json"
    )
    out.write_text(json.dumps(result, indent=2) + "\n")
    for codec, entry in result["codecs"].items():
        cells = [
            f"{d} {e['mean_ms']:.2f} ms" if e["supported"] else f"{d} unsupported"
            for d, e in entry.items()
        ]
        print(f"{codec:6s} " + " | ".join(cells))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
