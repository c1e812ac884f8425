"""Image and keypoint ops: the Python face of csrc/ (C++ / CUDA) with numpy references."""

from rtpose.ops.affine import affine_warp, affine_warp_reference, letterbox_matrix, native_available

__all__ = ["affine_warp", "affine_warp_reference", "letterbox_matrix", "native_available"]
