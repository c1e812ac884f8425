// CPU implementation of rtpose::cpu::box_to_affine (contract: rtpose/box_affine.h).
#include "rtpose/box_affine.h"

namespace rtpose::cpu {

void box_to_affine(const double* boxes, std::int64_t n, double out_w, double out_h, double padding,
                   double* fwd, double* inv) {
  // A few dozen boxes per frame: a plain loop, threads would cost more than they save.
  for (std::int64_t i = 0; i < n; ++i) {
    rtpose::box_to_affine(boxes + 4 * i, out_w, out_h, padding, fwd + 6 * i, inv + 6 * i);
  }
}

}  // namespace rtpose::cpu
