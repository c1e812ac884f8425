"""Kernel benchmarks of rtpose.ops: person crops and heatmap decoding, against baselines measured
in the same run.

(i)  64 crops of 256x192 from a 1920x1080 BGR frame, normalised, CHW:
     rtpose C++ (fp32/fp16) vs cv2.warpAffine looped over the crops (+ normalise + transpose) vs
     the numpy reference; on a GPU also rtpose CUDA (fp32/fp16) vs torch grid_sample.
(ii) decoding 64 x 17 x 64 x 48 heatmaps (fp16 on the GPU, fp32 on the CPU) per refinement mode:
     rtpose C++ vs the numpy reference; on a GPU also rtpose CUDA vs a torch implementation
     (argmax + quarter offset + inverse affine).

CPU timings: wall clock, median over repetitions after a warm-up. GPU timings: CUDA events on one
stream, median over many launches after a warm-up, inputs rotated through a set larger than L2;
each GPU figure is written next to its memory-bandwidth floor (bytes moved / copy bandwidth
measured in the same run) and the ratio to it.

    python benchmarks/bench_kernels.py [--out FILE] [--no-gpu] [--reps N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

import rtpose
from rtpose import ops
from rtpose.bench.run import cpu_name

N_CROPS, CROP_HW, FRAME_HW = 64, (256, 192), (1080, 1920)
HM_SHAPE = (64, 17, 64, 48)
INPUT_HW = (256, 192)
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
MODES = ("argmax", "quarter", "megvii", "dark")


def crop_case(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 1080p frame, 64 person-like boxes inside it, and their forward / inverse crop maps."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (*FRAME_HW, 3), dtype=np.uint8)
    h = rng.uniform(150, 700, N_CROPS)
    w = h * rng.uniform(0.3, 0.7, N_CROPS)
    x1 = rng.uniform(0, FRAME_HW[1] - w)
    y1 = rng.uniform(0, FRAME_HW[0] - h)
    boxes = np.stack([x1, y1, x1 + w, y1 + h], axis=1)
    maps = ops.box_to_affine(boxes, CROP_HW)
    return frame, maps.forward, maps.inverse


def heatmap_case(seed: int = 1) -> np.ndarray:
    """64 x 17 Gaussian heatmaps (sigma 2) with random sub-pixel peaks, plus a little noise."""
    rng = np.random.default_rng(seed)
    n, k, h, w = HM_SHAPE
    ys, xs = np.mgrid[0:h, 0:w]
    cx = rng.uniform(3, w - 4, (n, k, 1, 1))
    cy = rng.uniform(3, h - 4, (n, k, 1, 1))
    maps = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0)
    return (maps + rng.normal(0, 0.01, maps.shape)).astype(np.float32)


def median_ms(fn: Callable[[], object], *, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def cv2_crops(frame: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """What users write without rtpose: warpAffine per crop, then normalise and transpose."""
    out = np.empty((len(forward), 3, *CROP_HW), np.float32)
    mean, std = np.array(MEAN[::-1], np.float32), np.array(STD[::-1], np.float32)  # BGR
    for i, m in enumerate(forward):
        crop = cv2.warpAffine(frame, m, CROP_HW[::-1], flags=cv2.INTER_LINEAR)
        out[i] = ((crop.astype(np.float32) - mean) / std)[..., ::-1].transpose(2, 0, 1)
    return out


def bench_cpu(reps: int) -> dict:
    frame, forward, inverse = crop_case()
    kw = dict(mean=MEAN, std=STD, border_value=0.0)
    crops = {
        "rtpose_cpp_fp32": median_ms(
            lambda: ops.affine_warp(frame, forward, CROP_HW, **kw), reps=reps
        ),
        "rtpose_cpp_fp16": median_ms(
            lambda: ops.affine_warp(frame, forward, CROP_HW, dtype="float16", **kw), reps=reps
        ),
        "cv2_warpAffine_loop": median_ms(lambda: cv2_crops(frame, forward), reps=reps),
        "numpy_reference": median_ms(
            lambda: ops.affine_warp_reference(frame, forward, CROP_HW, **kw),
            reps=max(1, reps // 5),
            warmup=1,
        ),
    }  # fmt: skip
    heatmaps = heatmap_case()
    decode: dict[str, dict[str, float]] = {}
    for mode in MODES:
        decode[mode] = {
            "rtpose_cpp": median_ms(
                lambda m=mode: ops.decode_heatmaps(heatmaps, inverse, mode=m, input_size=INPUT_HW),
                reps=reps,
            ),
            "numpy_reference": median_ms(
                lambda m=mode: ops.decode_heatmaps_reference(
                    heatmaps, inverse, mode=m, input_size=INPUT_HW
                ),
                reps=max(1, reps // 5),
                warmup=1,
            ),
        }
    return {"crops_ms": crops, "decode_fp32_ms": decode}


# --- GPU ----------------------------------------------------------------------------------------


def bench_gpu(reps: int) -> dict:
    import cupy as cp
    import torch

    dev = cp.cuda.Device(0)
    props = cp.cuda.runtime.getDeviceProperties(0)
    stream = cp.cuda.Stream(non_blocking=True)
    handle = stream.ptr
    l2_bytes = int(props.get("l2CacheSize", 50 << 20))

    def gpu_median_us(fn: Callable[[int], object], rotate: int) -> float:
        with stream:
            for i in range(10):
                fn(i % rotate)
            start, stop = cp.cuda.Event(), cp.cuda.Event()
            times = []
            for i in range(reps):
                start.record(stream)
                fn(i % rotate)
                stop.record(stream)
                stop.synchronize()
                times.append(cp.cuda.get_elapsed_time(start, stop) * 1e3)
        return statistics.median(times)

    # Achievable bandwidth: a large device-to-device copy (read + write), same run.
    buffers = [cp.empty(1 << 30, cp.uint8) for _ in range(2)]
    copy_us = gpu_median_us(lambda i: cp.copyto(buffers[1], buffers[0]), rotate=1)
    bandwidth = 2 * buffers[0].nbytes / (copy_us * 1e-6)  # bytes / s
    buffers.clear()

    frame, forward, inverse = crop_case()
    frame_bytes = frame.nbytes
    n_frames = max(2, int(np.ceil(3 * l2_bytes / frame_bytes)))  # rotate > L2
    rng = np.random.default_rng(5)
    frames = [
        cp.asarray(rng.integers(0, 256, frame.shape, dtype=np.uint8)) for _ in range(n_frames)
    ]
    fwd_dev = cp.asarray(forward)
    # Bytes: every output element written once; source pixels read at least once (the boxes'
    # area, capped at the frame).
    areas = [abs(np.linalg.det(m[:, :2])) ** -1 * CROP_HW[0] * CROP_HW[1] for m in forward]
    read_bytes = min(frame_bytes, int(sum(areas) * 3))
    result: dict[str, object] = {"copy_bandwidth_GBps": bandwidth / 1e9}
    crops: dict[str, dict[str, float]] = {}
    for dtype, item in (("float32", 4), ("float16", 2)):
        outs = [cp.empty((N_CROPS, 3, *CROP_HW), dtype) for _ in range(2)]
        us = gpu_median_us(
            lambda i, d=dtype, o=outs: ops.affine_warp(
                frames[i], fwd_dev, CROP_HW, mean=MEAN, std=STD, dtype=d, stream=handle,
                out=o[i % 2],
            ),
            rotate=n_frames,
        )  # fmt: skip
        floor = (N_CROPS * 3 * CROP_HW[0] * CROP_HW[1] * item + read_bytes) / bandwidth * 1e6
        crops[f"rtpose_cuda_{dtype}"] = {"us": us, "floor_us": floor, "x_floor": us / floor}

    # torch baseline: affine_grid + grid_sample (bilinear, zeros) + normalise, fp16 out.
    tframes = [torch.as_tensor(f, device="cuda") for f in frames]
    theta = _torch_theta(inverse, FRAME_HW, CROP_HW)
    tmean = torch.tensor(MEAN, device="cuda").view(1, 3, 1, 1)
    tstd = torch.tensor(STD, device="cuda").view(1, 3, 1, 1)
    grid = torch.nn.functional.affine_grid(theta, (N_CROPS, 3, *CROP_HW), align_corners=False)

    def torch_crops(i: int) -> object:
        img = tframes[i].permute(2, 0, 1).flip(0).float().unsqueeze(0).expand(N_CROPS, -1, -1, -1)
        out = torch.nn.functional.grid_sample(img, grid, mode="bilinear", align_corners=False)
        return ((out - tmean) / tstd).half()

    with torch.cuda.stream(torch.cuda.ExternalStream(handle)):
        crops["torch_grid_sample_fp16"] = {"us": gpu_median_us(torch_crops, rotate=n_frames)}
    result["crops"] = crops

    heatmaps = heatmap_case().astype(np.float16)
    hm_bytes = heatmaps.nbytes
    n_sets = max(2, int(np.ceil(3 * l2_bytes / hm_bytes)))
    hm_dev = [cp.asarray(heatmaps) for _ in range(n_sets)]
    inv_dev = cp.asarray(inverse)
    out_dev = cp.empty((*HM_SHAPE[:2], 3), cp.float32)
    decode: dict[str, dict[str, float]] = {}
    floor = (hm_bytes + out_dev.nbytes) / bandwidth * 1e6
    for mode in MODES:
        us = gpu_median_us(
            lambda i, m=mode: ops.decode_heatmaps(
                hm_dev[i], inv_dev, mode=m, input_size=INPUT_HW, stream=handle, out=out_dev
            ),
            rotate=n_sets,
        )
        decode[f"rtpose_cuda_{mode}"] = {"us": us, "floor_us": floor, "x_floor": us / floor}
    thm = [torch.as_tensor(h, device="cuda") for h in hm_dev]
    tinv = torch.as_tensor(inverse, device="cuda")
    with torch.cuda.stream(torch.cuda.ExternalStream(handle)):
        decode["torch_quarter"] = {
            "us": gpu_median_us(lambda i: _torch_decode_quarter(thm[i], tinv), rotate=n_sets)
        }
    result["decode_fp16"] = decode
    result["device"] = {
        "name": props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
        "compute_capability": f"{props['major']}.{props['minor']}",
        "l2_bytes": l2_bytes,
        "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(),
        "driver": cp.cuda.runtime.driverGetVersion(),
        "cupy": cp.__version__,
        "torch": torch.__version__,
    }
    del dev
    return result


def _torch_theta(inverse: np.ndarray, frame_hw, crop_hw):
    """affine_grid's normalised theta (align_corners=False) for pixel maps crop -> frame."""
    import torch

    (fh, fw), (ch, cw) = frame_hw, crop_hw
    # normalised crop coords u = (2x + 1) / cw - 1  ->  pixel x = ((u + 1) * cw - 1) / 2
    to_pix = np.array([[cw / 2, 0, (cw - 1) / 2], [0, ch / 2, (ch - 1) / 2], [0, 0, 1]])
    to_norm = np.array([[2 / fw, 0, 1 / fw - 1], [0, 2 / fh, 1 / fh - 1], [0, 0, 1]])
    full = np.concatenate([inverse, np.tile([[[0, 0, 1.0]]], (len(inverse), 1, 1))], axis=1)
    theta = to_norm @ full @ to_pix
    return torch.as_tensor(theta[:, :2], dtype=torch.float32, device="cuda")


def _torch_decode_quarter(hm, inv):
    """argmax + quarter offset + inverse affine in torch (the obvious GPU implementation)."""
    import torch

    n, k, h, w = hm.shape
    flat = hm.float().view(n, k, -1)
    score, idx = flat.max(dim=-1)
    x, y = (idx % w), (idx // w)
    xi, yi = x.clamp(1, w - 2), y.clamp(1, h - 2)
    g = hm.float()
    gather = lambda yy, xx: g.view(n, k, -1).gather(-1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)  # noqa: E731
    dx = torch.sign(gather(y, xi + 1) - gather(y, xi - 1)) * ((x > 1) & (x < w - 1))
    dy = torch.sign(gather(yi + 1, x) - gather(yi - 1, x)) * ((y > 1) & (y < h - 1))
    px = (x + 0.25 * dx) * (INPUT_HW[1] / w)
    py = (y + 0.25 * dy) * (INPUT_HW[0] / h)
    ox = inv[:, None, 0, 0] * px + inv[:, None, 0, 1] * py + inv[:, None, 0, 2]
    oy = inv[:, None, 1, 0] * px + inv[:, None, 1, 1] * py + inv[:, None, 1, 2]
    return torch.stack([ox, oy, score.double()], dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="JSON file (default: benchmarks/results/...)")
    parser.add_argument("--reps", type=int, default=20, help="timed repetitions (GPU: x50)")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU part")
    args = parser.parse_args()

    report: dict[str, object] = {
        "date": dt.date.today().isoformat(),
        "what": "issue-3 kernels: 64 crops 256x192 from 1080p; decode 64x17x64x48",
        "cpu": cpu_name(),
        "cpu_threads": os.cpu_count(),
        "versions": {
            "rtpose": rtpose.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "native_ops": ops.native_available(),
        },
        "cpu_results": bench_cpu(args.reps),
    }
    gpu = not args.no_gpu and ops.gpu_available()
    if gpu:
        report["gpu_results"] = bench_gpu(args.reps * 50)
    _print(report)
    out = args.out
    if out is None:
        tag = "gpu" if gpu else f"cpu{os.cpu_count()}"
        if gpu:
            name = str(report["gpu_results"]["device"]["name"])  # type: ignore[index]
            tag = name.lower().replace("nvidia ", "").replace(" ", "-")
        out = Path(__file__).parent / "results" / f"{report['date']}-{tag}-kernels.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


def _print(report: dict) -> None:
    cpu = report["cpu_results"]
    print(f"CPU: {report['cpu']} ({report['cpu_threads']} threads)")
    print("  64 crops 256x192 from 1080p (ms):")
    for name, ms in cpu["crops_ms"].items():
        print(f"    {name:<24} {ms:9.2f}")
    print("  decode 64x17x64x48 fp32 (ms):   rtpose_cpp   numpy_reference")
    for mode, row in cpu["decode_fp32_ms"].items():
        print(f"    {mode:<10} {row['rtpose_cpp']:12.3f} {row['numpy_reference']:14.2f}")
    gpu = report.get("gpu_results")
    if gpu:
        print(f"GPU: {gpu['device']['name']}  copy bandwidth {gpu['copy_bandwidth_GBps']:.0f} GB/s")
        for section in ("crops", "decode_fp16"):
            for name, row in gpu[section].items():
                floor = ""
                if "floor_us" in row:
                    floor = f"  floor {row['floor_us']:.1f} us (x{row['x_floor']:.1f})"
                print(f"    {section:<12} {name:<26} {row['us']:9.1f} us{floor}")


if __name__ == "__main__":
    main()
