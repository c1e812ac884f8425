"""``rtpose-build``: compile a zoo model or an ONNX file into a TensorRT engine with a manifest,
or (``--target cpu``) into the gated int8 ONNX the CPU backends run."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from rtpose.cli.main import EXPECTED_ERRORS


def build_parser() -> argparse.ArgumentParser:
    from rtpose.models.zoo import list_models

    parser = argparse.ArgumentParser(
        prog="rtpose-build",
        description="Build a TensorRT engine (TensorRT 10/11 or TensorRT-RTX, whichever is "
        "installed) of MODEL (a zoo name) or an ONNX file. Precision lives in the ONNX: fp16 = "
        "mixed-precision ONNX, int8 = Q/DQ calibrated on real frames. An accuracy gate compares "
        "the candidate's keypoints with fp32 on real frames and refuses the engine when the mean "
        "OKS similarity is below --min-oks. Writes ENGINE and ENGINE.json (manifest) into --out. "
        "--target cpu writes the int8 ONNX for ONNX Runtime / OpenVINO instead (CPU recipe, the "
        "same gate), as rtpose run --precision int8 builds it on first use.",
    )
    parser.add_argument(
        "model", metavar="MODEL|ONNX", help=f"zoo name ({', '.join(list_models())}) or .onnx file"
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "fp16", "int8"),
        help="precision (default: fp16 for --target tensorrt, int8 for --target cpu)",
    )
    parser.add_argument(
        "--target",
        choices=("tensorrt", "cpu"),
        default="tensorrt",
        help="tensorrt: an engine (default); cpu: the int8 ONNX for the CPU backends "
        "(--precision int8; --batch, --gpu-arch and --flavour do not apply)",
    )
    parser.add_argument("--weights", help="checkpoint of a zoo model (top-down models need one)")
    parser.add_argument(
        "--as",
        dest="model_name",
        metavar="NAME",
        help="for an ONNX file: the zoo model whose pre/post-processing it uses",
    )
    parser.add_argument(
        "--calib",
        metavar="SOURCE",
        help="int8 calibration (and gate) frames: a video or an image folder "
        "(default: the sample video of `rtpose fetch`)",
    )
    parser.add_argument(
        "--calib-frames",
        type=int,
        default=64,
        metavar="N",
        help="calibration frames, evenly spaced (default: %(default)s)",
    )
    parser.add_argument(
        "--eval-frames",
        type=int,
        default=16,
        metavar="N",
        help="frames the accuracy gate compares on (default: %(default)s)",
    )
    parser.add_argument(
        "--batch",
        default="1:8:32",
        metavar="MIN:OPT:MAX",
        help="batch range of the optimization profile (default: %(default)s)",
    )
    parser.add_argument(
        "--gpu-arch",
        metavar="ARCH",
        help="compute capability to build for, e.g. sm80 (TensorRT-RTX; needed "
        "on a machine without a GPU)",
    )
    parser.add_argument(
        "--out", default="engines", metavar="DIR", help="output directory (default: %(default)s)"
    )
    parser.add_argument(
        "--min-oks", type=float, default=0.95, help="accuracy gate threshold (default: %(default)s)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="keep an engine that fails the accuracy gate (the manifest says so)",
    )
    parser.add_argument(
        "--flavour",
        choices=("auto", "tensorrt", "tensorrt_rtx"),
        default="auto",
        help="TensorRT to build with (default: %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from rtpose.deploy.build import build_engine, parse_batch
    from rtpose.deploy.cpu_build import build_cpu_model

    if args.precision is None:
        args.precision = "int8" if args.target == "cpu" else "fp16"

    start = time.perf_counter()
    common = dict(
        weights=args.weights, model_name=args.model_name, calib=args.calib,
        calib_frames=args.calib_frames, eval_frames=args.eval_frames, out=args.out,
        min_oks=args.min_oks, force=args.force, progress=lambda line: print(line, flush=True),
    )  # fmt: skip
    try:
        if args.target == "cpu":
            result = build_cpu_model(args.model, precision=args.precision, **common)
        else:
            result = build_engine(
                args.model, precision=args.precision, batch=parse_batch(args.batch),
                gpu_arch=args.gpu_arch, flavour=args.flavour, **common,
            )  # fmt: skip
    except EXPECTED_ERRORS as exc:
        print(f"rtpose-build: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rtpose-build: interrupted; nothing was written", file=sys.stderr)
        return 130
    acc = result.accuracy
    what = "model " if args.target == "cpu" else "engine"
    print(f"\nrtpose-build: {args.model} {args.precision} ({args.target})")
    print(f"  {what}    {result.engine}" + ("  (reused from the cache)" if result.reused else ""))
    print(f"  manifest  {result.manifest}")
    print(f"  size      {result.size_bytes / 2**20:.1f} MiB")
    print(f"  time      {time.perf_counter() - start:.1f} s")
    if acc is None:
        print("  accuracy  fp32 (reference)")
    else:
        verdict = "passed" if acc["passed"] else "FAILED (kept with --force)"
        print(
            f"  accuracy  mean OKS {acc['oks_mean']:.4f} vs fp32, {verdict}; keypoint error "
            f"mean {acc['error_mean_px']:.3f} px, p95 {acc['error_p95_px']:.3f} px"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
