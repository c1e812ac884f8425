"""Output codecs: turning raw network outputs into boxes and keypoints (numpy references).

Heatmap codecs encode training targets and decode network outputs; their ``decode_spec`` tells
the pipeline how to run the same decoding with ``rtpose.ops.decode_heatmaps``. Importing this
package needs numpy only (OpenCV is imported by Megvii encoding and UDP "combined" decoding).
"""

from rtpose.codecs.heatmap import DecodeSpec, HeatmapTarget
from rtpose.codecs.megvii import MSPN_KERNEL_SIZES, MegviiHeatmap, megvii_targets_for_stages
from rtpose.codecs.msra import MSRAHeatmap, dark_blur_kernel, dark_heatmap
from rtpose.codecs.udp import UDPHeatmap

__all__ = [
    "MSPN_KERNEL_SIZES",
    "DecodeSpec",
    "HeatmapTarget",
    "MSRAHeatmap",
    "MegviiHeatmap",
    "UDPHeatmap",
    "dark_blur_kernel",
    "dark_heatmap",
    "megvii_targets_for_stages",
]
