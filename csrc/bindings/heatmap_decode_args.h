// Checks of the scalar decode_heatmaps arguments, shared by the CPU and GPU bindings.
#pragma once

#include <cmath>
#include <string>

#include "bindings/common.h"
#include "rtpose/heatmap_decode.h"

namespace rtpose::bindings {

inline void check_params(int mode, int blur_kernel, double scale_x, double scale_y) {
  if (mode < 0 || mode > 3) {
    throw py::value_error(
        "decode_heatmaps: mode must be 0 (argmax), 1 (quarter), 2 (megvii) or 3 (dark), got " +
        std::to_string(mode));
  }
  const auto m = static_cast<rtpose::RefineMode>(mode);
  const bool blurs = m == rtpose::RefineMode::kMegvii || m == rtpose::RefineMode::kDark;
  if (blurs && (blur_kernel < 1 || blur_kernel > rtpose::kMaxBlurKernel || blur_kernel % 2 == 0)) {
    throw py::value_error("decode_heatmaps: blur_kernel must be odd in [1, " +
                          std::to_string(rtpose::kMaxBlurKernel) + "], got " +
                          std::to_string(blur_kernel));
  }
  if (!(std::isfinite(scale_x) && scale_x > 0 && std::isfinite(scale_y) && scale_y > 0)) {
    throw py::value_error("decode_heatmaps: scale_x and scale_y must be finite and > 0, got " +
                          format_values({scale_x, scale_y}));
  }
}

}  // namespace rtpose::bindings
