"""draw_poses and AnnotatedVideoWriter."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from rtpose.errors import RtposeError
from rtpose.skeletons import COCO17, MPII16
from rtpose.viz import AnnotatedVideoWriter, draw_poses


@dataclass
class _Person:
    box: tuple[float, float, float, float]
    score: float | None
    keypoints: np.ndarray  # (K, 3)
    track_id: int | None = None


def _person(k: int = 17, score: float = 0.9, track_id: int | None = None) -> _Person:
    rng = np.random.default_rng(0)
    kpts = np.column_stack([rng.uniform(60, 180, k), rng.uniform(30, 110, k), np.ones(k)])
    return _Person((50.0, 20.0, 190.0, 120.0), score, kpts, track_id)


def _image() -> np.ndarray:
    return np.zeros((144, 256, 3), np.uint8)


# -- draw_poses -------------------------------------------------------------------------------


def test_draws_on_a_copy_by_default():
    image = _image()
    out = draw_poses(image, [_person()])
    assert out is not image and out.shape == image.shape and out.dtype == np.uint8
    assert not image.any(), "the caller's image must not change"
    assert out.any()


def test_draws_in_place_when_asked():
    image = _image()
    out = draw_poses(image, [_person()], copy=False)
    assert out is image and image.any()


def test_no_persons_draws_nothing():
    assert not draw_poses(_image(), []).any()


def test_low_score_keypoints_are_skipped():
    person = _person()
    person.box = (float("nan"),) * 4  # no box, no label: only keypoints could draw
    low = person.keypoints.copy()
    low[:, 2] = 0.2
    hidden = _Person(person.box, 0.9, low)
    assert not draw_poses(_image(), [hidden], kpt_threshold=0.5).any()
    assert draw_poses(_image(), [hidden], kpt_threshold=0.1).any()


def test_one_keypoint_draws_a_dot_at_its_position():
    kpts = np.zeros((17, 3))
    kpts[0] = (100.0, 50.0, 1.0)  # only the nose is visible
    out = draw_poses(_image(), [_Person((float("nan"),) * 4, None, kpts)])
    ys, xs = np.nonzero(out.any(axis=2))
    assert abs(xs.mean() - 100) < 1 and abs(ys.mean() - 50) < 1
    assert xs.max() - xs.min() < 12  # a dot, no limbs (its neighbours are invisible)


def test_left_and_right_have_different_colours():
    kpts = np.zeros((17, 3))
    kpts[9] = (60.0, 70.0, 1.0)  # left_wrist
    kpts[10] = (200.0, 70.0, 1.0)  # right_wrist
    out = draw_poses(_image(), [_Person((float("nan"),) * 4, None, kpts)])
    assert tuple(out[70, 60]) != tuple(out[70, 200])
    assert out[70, 60].any() and out[70, 200].any()


def test_label_shows_track_id_or_score():
    # Both labels draw something above the box; different texts give different pixels.
    tracked = draw_poses(_image(), [_person(track_id=3)])
    scored = draw_poses(_image(), [_person(score=0.87)])
    band = slice(0, 20)
    assert tracked[band].any() and scored[band].any()
    assert not np.array_equal(tracked[band], scored[band])


def test_wild_coordinates_do_not_crash():
    person = _person()
    person.keypoints[:3, :2] = [[1e12, -1e12], [np.nan, 5.0], [np.inf, 0.0]]
    person.box = (-1e9, -1e9, 1e9, 1e9)
    draw_poses(_image(), [person])


def test_other_skeleton():
    assert draw_poses(_image(), [_person(k=16)], MPII16).any()


def test_input_validation():
    with pytest.raises(ValueError, match=r"keypoints must have shape \(17, 3\).*got \(16, 3\)"):
        draw_poses(_image(), [_person(k=16)], COCO17)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        draw_poses(np.zeros((10, 10), np.uint8), [])
    with pytest.raises(ValueError, match="uint8"):
        draw_poses(np.zeros((10, 10, 3), np.float32), [])
    with pytest.raises(ValueError, match="C-contiguous"):
        draw_poses(_image()[:, ::2], [], copy=False)


# -- AnnotatedVideoWriter ---------------------------------------------------------------------


def _frame(i: int, size=(64, 48)) -> np.ndarray:
    img = np.full((size[1], size[0], 3), (i * 25 % 256, 100, 255 - i * 25 % 256), np.uint8)
    cv2.putText(img, str(i), (4, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (255, 255, 255), 2)
    return img


def _read_back(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_writer_round_trip(tmp_path, ext):
    path = tmp_path / f"out{ext}"
    with AnnotatedVideoWriter(path, 10.0, (64, 48)) as out:
        for i in range(12):
            out.write(_frame(i))
            # Nothing under the final name until the writer is closed.
            assert not path.exists()
        assert out.frames_written == 12
    assert [p.name for p in tmp_path.iterdir()] == [path.name]

    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 12
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    cap.release()
    frames = _read_back(path)
    assert len(frames) == 12
    for i, img in enumerate(frames):
        assert img.shape == (48, 64, 3)
        assert np.abs(img.astype(int) - _frame(i)).mean() < 12.0  # lossy codecs


def test_writer_leaves_nothing_on_exception(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt), AnnotatedVideoWriter(path, 10.0, (64, 48)) as out:
        for i in range(5):
            out.write(_frame(i))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_writer_keeps_an_existing_file_on_exception(tmp_path):
    path = tmp_path / "out.avi"
    path.write_bytes(b"previous result")
    with pytest.raises(RuntimeError), AnnotatedVideoWriter(path, 10.0, (64, 48)) as out:
        out.write(_frame(0))
        raise RuntimeError("boom")
    assert path.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.avi"]


def test_writer_abort_and_garbage_collection_delete_the_partial_file(tmp_path):
    out = AnnotatedVideoWriter(tmp_path / "a.mp4", 10.0, (64, 48))
    out.write(_frame(0))
    out.abort()
    assert list(tmp_path.iterdir()) == []

    out = AnnotatedVideoWriter(tmp_path / "b.mp4", 10.0, (64, 48))
    out.write(_frame(0))
    del out  # never closed: the finaliser cleans up
    assert list(tmp_path.iterdir()) == []


def test_writer_without_frames_saves_nothing(tmp_path):
    path = tmp_path / "out.mp4"
    with (
        pytest.raises(RtposeError, match="no frames were written"),
        AnnotatedVideoWriter(path, 10.0, (64, 48)),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"'\.mov'.*\.mp4 \(mp4v\), \.avi \(MJPG\)"):
        AnnotatedVideoWriter(tmp_path / "out.mov", 10.0, (64, 48))
    with pytest.raises(ValueError, match="unsupported extension '\\(none\\)'"):
        AnnotatedVideoWriter(tmp_path / "out", 10.0, (64, 48))
    with pytest.raises(ValueError, match="fps"):
        AnnotatedVideoWriter(tmp_path / "out.mp4", 0.0, (64, 48))
    with pytest.raises(ValueError, match=r"even width and height.*63x48"):
        AnnotatedVideoWriter(tmp_path / "out.mp4", 10.0, (63, 48))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        AnnotatedVideoWriter(tmp_path / "missing" / "out.mp4", 10.0, (64, 48))
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_frames_of_the_wrong_size(tmp_path):
    # cv2.VideoWriter would drop them silently and the file would come out short.
    with AnnotatedVideoWriter(tmp_path / "out.avi", 10.0, (64, 48)) as out:
        with pytest.raises(ValueError, match=r"shape \(48, 64, 3\).*got shape \(64, 48, 3\)"):
            out.write(np.zeros((64, 48, 3), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            out.write(np.zeros((48, 64, 3), np.float32))
        out.write(_frame(0))
    assert len(_read_back(tmp_path / "out.avi")) == 1


def test_writer_open_failure_is_an_rtpose_error(tmp_path, monkeypatch):
    class _ClosedWriter:
        def __init__(self, *args):
            pass

        def isOpened(self):  # cv2's name
            return False

        def release(self):
            pass

    monkeypatch.setattr(cv2, "VideoWriter", _ClosedWriter)
    with pytest.raises(RtposeError, match="could not open a mp4v video writer"):
        AnnotatedVideoWriter(tmp_path / "out.mp4", 10.0, (64, 48))
    assert list(tmp_path.iterdir()) == []
