"""Image and keypoint ops: the Python face of csrc/ (C++ and CUDA kernels) with numpy references.

Every kernel op takes numpy arrays (C++ kernels, or the numpy reference ``*_reference`` when the
extension is missing; the references are also the tests' oracles) or GPU arrays (cupy, torch,
DALI, anything with ``__cuda_array_interface__`` or DLPack) plus a CUDA ``stream``; GPU results
are :class:`DeviceArray` objects (or the caller's ``out``). ``box_to_affine`` and the letterbox
helpers are numpy only. A failure inside a native kernel raises
:class:`rtpose.errors.KernelError`.
"""

from rtpose.cuda.arrays import DeviceArray, gpu_available
from rtpose.ops.affine import affine_warp, affine_warp_reference, native_available
from rtpose.ops.box_affine import BoxAffine, box_to_affine
from rtpose.ops.flip import flip_merge, flip_merge_reference
from rtpose.ops.heatmap_decode import (
    RefineMode,
    decode_heatmaps,
    decode_heatmaps_reference,
    gaussian_kernel,
)
from rtpose.ops.letterbox import Letterbox, letterbox_matrix

__all__ = [
    "BoxAffine",
    "DeviceArray",
    "Letterbox",
    "RefineMode",
    "affine_warp",
    "affine_warp_reference",
    "box_to_affine",
    "decode_heatmaps",
    "decode_heatmaps_reference",
    "flip_merge",
    "flip_merge_reference",
    "gaussian_kernel",
    "gpu_available",
    "letterbox_matrix",
    "native_available",
]
