// Person box -> crop affine map (MMPose's top-down geometry) and its inverse.
//
// A box (x1, y1, x2, y2) becomes a centre and a size, the size is enlarged by `padding` (1.25
// in MMPose) and widened or heightened to the network input's aspect ratio, and the crop maps
// that region onto the (out_h, out_w) input: forward = frame -> crop (cv2.warpAffine), inverse =
// crop-input -> frame, equal to MMPose's `keypoints / input_size * scale + center - 0.5 * scale`.
// Shared by the CPU (csrc/cpu/box_affine.cpp) and CUDA (csrc/cuda/box_affine.cu) versions.
#pragma once

#include <cstdint>

#include "rtpose/common.h"

namespace rtpose {

// fwd, inv: 6 doubles each, row-major 2x3. Sizes below one pixel count as one pixel (so an empty
// box still gives an invertible map); a NaN or infinite box gives NaN/inf entries.
RTPOSE_HD void box_to_affine(const double* box, double out_w, double out_h, double padding,
                             double* fwd, double* inv) {
  const double cx = dmul_rn(dadd_rn(box[0], box[2]), 0.5);
  const double cy = dmul_rn(dadd_rn(box[1], box[3]), 0.5);
  double w = dmul_rn(dadd_rn(box[2], -box[0]), padding);
  double h = dmul_rn(dadd_rn(box[3], -box[1]), padding);
  w = w < 1.0 ? 1.0 : w;  // NaN stays NaN
  h = h < 1.0 ? 1.0 : h;
  const double aspect = out_w / out_h;
  if (w > dmul_rn(h, aspect)) {
    h = w / aspect;
  } else {
    w = dmul_rn(h, aspect);
  }
  const double sx = out_w / w;  // crop pixels per frame pixel
  const double sy = out_h / h;
  fwd[0] = sx;
  fwd[1] = 0.0;
  fwd[2] = dadd_rn(dmul_rn(out_w, 0.5), -dmul_rn(sx, cx));
  fwd[3] = 0.0;
  fwd[4] = sy;
  fwd[5] = dadd_rn(dmul_rn(out_h, 0.5), -dmul_rn(sy, cy));
  inv[0] = w / out_w;
  inv[1] = 0.0;
  inv[2] = dadd_rn(cx, -dmul_rn(w, 0.5));
  inv[3] = 0.0;
  inv[4] = h / out_h;
  inv[5] = dadd_rn(cy, -dmul_rn(h, 0.5));
}

namespace cpu {
// boxes: (n, 4) float64; fwd, inv: (n, 2, 3) float64, C-contiguous.
void box_to_affine(const double* boxes, std::int64_t n, double out_w, double out_h, double padding,
                   double* fwd, double* inv);
}  // namespace cpu

namespace cuda {
// boxes: device (n, 4), float64 (boxes_f64) or float32, rows `box_stride` elements apart;
// fwd, inv: device (n, 2, 3) float64. Queued on `stream`.
void box_to_affine(const void* boxes, bool boxes_f64, std::int64_t box_stride, std::int64_t n,
                   double out_w, double out_h, double padding, double* fwd, double* inv,
                   void* stream);
}  // namespace cuda

}  // namespace rtpose
