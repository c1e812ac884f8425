"""``Frame``'s image size is named by its order: ``hw`` = (height, width), like ``image.shape``."""

from __future__ import annotations

import numpy as np

from rtpose.video import Frame


def test_frame_hw_is_height_then_width_of_the_image():
    frame = Frame(index=0, pts=0.0, image=np.zeros((48, 64, 3), np.uint8))
    assert frame.hw == (48, 64) == frame.image.shape[:2]
    assert all(type(v) is int for v in frame.hw)


def test_frame_has_no_size_whose_order_a_reader_would_guess():
    # ``size`` was (width, height) while every other size in rtpose is (height, width)
    frame = Frame(index=0, pts=0.0, image=np.zeros((48, 64, 3), np.uint8))
    assert not hasattr(frame, "size")
    assert not hasattr(Frame, "size")
