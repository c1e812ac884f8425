"""GPU helpers of the pipeline: CUDA streams per stage, and the few array steps the kernels do
not cover, done with cupy on the GPU so that frames and network outputs never reach the host.

Only imported when frames or network outputs are GPU arrays (cupy is then required).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rtpose._deps import require


def _cupy():
    return require("cupy", purpose="GPU frames in the video pipeline")


def as_cupy(array: Any) -> Any:
    """A cupy view of any CUDA array (cupy, torch, DeviceArray, DALI), no copy."""
    cp = _cupy()
    if isinstance(array, cp.ndarray):
        return array
    if hasattr(array, "__cuda_array_interface__"):
        return cp.asarray(array)
    return cp.from_dlpack(array)


def score_candidates(preds: Any, row: int, conf: float, *, num_keypoints: int = 17) -> np.ndarray:
    """(1, C, M) host copy of the anchors of ``preds[row]`` whose best class score is above
    ``conf`` (YOLO-pose layout: 4 box rows, then class rows, then keypoints).

    The threshold is the decoder's own, so decoding these M anchors gives exactly the persons
    that decoding all anchors would; the copy is a few KB instead of the whole output.
    """
    from rtpose.cuda.arrays import transfers

    cp = _cupy()
    p = as_cupy(preds)[row]  # (C, A)
    nc = int(p.shape[0]) - 4 - 3 * num_keypoints
    scores = p[4 : 4 + nc].max(axis=0) if nc > 1 else p[4]
    keep = cp.nonzero(scores > conf)[0]
    host = cp.asnumpy(cp.ascontiguousarray(p[:, keep]).astype(cp.float32))[None]
    transfers.record("d2h", host.nbytes)
    return host


def concat_mirrored(crops: Any) -> Any:
    """(N, 3, H, W) GPU crops -> (2N, 3, H, W): the crops, then mirrored left-right."""
    cp = _cupy()
    c = as_cupy(crops)
    return cp.ascontiguousarray(cp.concatenate([c, c[..., ::-1]]))


def concatenate(parts: list[Any]) -> Any:
    """GPU arrays joined along the batch axis."""
    cp = _cupy()
    return cp.concatenate([as_cupy(p) for p in parts])


class StageStream:
    """One non-blocking CUDA stream for a pipeline stage, with an event to hand work on.

    ``handle`` is the ``cudaStream_t`` the stage queues its kernels on; :meth:`record` marks
    the end of the stage's work for one item and :meth:`wait_for` makes this stream wait for
    another stage's mark on the device (no host synchronisation).
    """

    def __init__(self, device: int = 0) -> None:
        cp = _cupy()
        with cp.cuda.Device(device):
            self.stream = cp.cuda.Stream(non_blocking=True)
        self.device = device

    @property
    def handle(self) -> int:
        return int(self.stream.ptr)

    def record(self) -> Any:
        return self.stream.record()

    def wait_for(self, event: Any) -> None:
        if event is not None:
            self.stream.wait_event(event)

    def synchronize(self) -> None:
        self.stream.synchronize()


def free_memory_pool() -> None:
    """Return cupy's cached device memory to the driver (after a stream is closed)."""
    cp = _cupy()
    cp.get_default_memory_pool().free_all_blocks()
    cp.get_default_pinned_memory_pool().free_all_blocks()
