"""Runs the stages of a video stream: one reader thread per source, one thread per stage,
bounded queues between them; or everything in the caller's thread (synchronous mode).

Files are lossless and ordered: a reader blocks when its queue is full. Live sources (cameras,
streams, files played live) keep only their newest frame: a frame the pipeline has not taken by
the time the next one arrives is dropped and counted, so latency cannot grow.

Errors: an exception in a reader or a stage stops the stream and is raised to the caller from
the iteration, with its original traceback. Closing stops every thread (joins them) and closes
the sources.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rtpose.estimators.results import PoseFrame
from rtpose.pipeline.steps import Step, _Stopped
from rtpose.video.frames import Frame, FrameSource

log = logging.getLogger(__name__)

_POLL = 0.05  # seconds between checks of the stop flag while blocked


class _End:
    """Marks the end of a source or of the stream."""


@dataclass
class _Failure:
    error: BaseException


@dataclass(frozen=True)
class StreamStats:
    """What a stream has done so far.

    Attributes:
        frames: PoseFrames yielded.
        dropped: live frames dropped because a newer one arrived before the pipeline took them.
        elapsed_s: seconds since iteration started.
        fps: frames / elapsed_s.
    """

    frames: int
    dropped: int
    elapsed_s: float

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


class LatestSlot:
    """A one-frame mailbox with latest-frame semantics: a new frame replaces an untaken one
    (counted in ``dropped``); the end marker is never dropped."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._end: Any = None
        self.dropped = 0

    def put(self, item: Any) -> None:
        with self._cond:
            if isinstance(item, _End | _Failure):
                self._end = item
            else:
                if self._item is not None:
                    self.dropped += 1
                self._item = item
            self._cond.notify_all()

    def get(self, stop: threading.Event) -> Any:
        with self._cond:
            while self._item is None and self._end is None:
                if stop.is_set():
                    return _End()
                self._cond.wait(_POLL)
            if self._item is not None:
                item, self._item = self._item, None
                return item
            return self._end


class _Queue:
    """A bounded FIFO whose put/get give up when the stream stops."""

    def __init__(self, size: int) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self.dropped = 0

    def put(self, item: Any, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                self._q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def get(self, stop: threading.Event) -> Any:
        while True:
            try:
                return self._q.get(timeout=_POLL)
            except queue.Empty:
                if stop.is_set():
                    return _End()


def _read(source: FrameSource) -> Iterator[tuple[Frame, float]]:
    """Frames of ``source`` with the milliseconds each took to decode."""
    frames = iter(source)
    while True:
        t0 = time.perf_counter()
        frame = next(frames, None)
        if frame is None:
            return
        yield frame, (time.perf_counter() - t0) * 1e3


class _Stepper:
    """Builds the steps: one frame of every source still active, in source order."""

    def __init__(self, n: int) -> None:
        self.active = list(range(n))
        self.counts = [0] * n
        self.seq = 0

    def next(self, take: Any) -> Step | _Failure | None:
        """The next step from ``take(source) -> (frame, ms) | _End | _Failure``; None at the end
        of every source."""
        while self.active:
            frames, sources, timings, counts = [], [], [], []
            for src in list(self.active):
                item = take(src)
                if isinstance(item, _Failure):
                    return item
                if isinstance(item, _End):
                    self.active.remove(src)
                    continue
                frame, ms = item
                frames.append(frame)
                sources.append(src)
                timings.append({"decode": ms})
                counts.append(self.counts[src])
                self.counts[src] += 1
            if frames:
                self.seq += 1
                return Step(self.seq - 1, frames, sources, counts, timings)
        return None


class Runner:
    """Drives ``steps`` (OneStageSteps / TopDownSteps) over ``sources``.

    Args:
        sources: open frame sources (source number = position).
        steps: the stage functions (``names`` and ``run(stage, step, stream)``).
        pipelined: threads (True) or the caller's thread (False).
        queue_size: steps each inter-stage queue holds (files; live sources use 1).
        max_frames: stop after this many frames per source.
        gpu_device: CUDA device for the stages' own streams when frames are on the GPU, else None.
    """

    def __init__(
        self,
        sources: Sequence[FrameSource],
        steps: Any,
        *,
        pipelined: bool,
        stop: threading.Event,
        queue_size: int = 2,
        max_frames: int | None = None,
        gpu_device: int | None = None,
    ) -> None:
        self.sources = list(sources)
        self.steps = steps
        self.pipelined = pipelined
        self.stop = stop
        self.live = any(s.is_live for s in self.sources)
        self.queue_size = 1 if self.live else queue_size
        self.max_frames = max_frames
        self.gpu_device = gpu_device
        self._threads: list[threading.Thread] = []
        self._inboxes: list[Any] = []
        self._frames = 0
        self._t0: float | None = None

    # --- public ----------------------------------------------------------------------------------

    @property
    def stats(self) -> StreamStats:
        dropped = sum(getattr(box, "dropped", 0) for box in self._inboxes)
        elapsed = 0.0 if self._t0 is None else time.perf_counter() - self._t0
        return StreamStats(self._frames, dropped, elapsed)

    def __iter__(self) -> Iterator[PoseFrame]:
        self._t0 = time.perf_counter()
        results = self._pipelined() if self.pipelined else self._synchronous()
        for frame in results:
            self._frames += 1
            yield frame

    def close(self) -> None:
        """Stop every thread, wait for them, then close the sources.

        The sources are closed only after their reader threads have finished their current
        read: releasing an OpenCV/FFmpeg decoder from another thread in the middle of a read
        aborts the process in libavcodec.
        """
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
            if thread.is_alive():
                log.warning("pipeline thread %s did not stop within 10 s", thread.name)
        self._threads.clear()
        for source in self.sources:
            try:
                source.close()
            except Exception:  # closing must not hide the error that made us close
                log.debug("closing a source failed", exc_info=True)

    # --- synchronous -----------------------------------------------------------------------------

    def _synchronous(self) -> Iterator[PoseFrame]:
        readers = [_read(s) for s in self.sources]
        taken = [0] * len(readers)

        def take(src: int) -> Any:
            item = next(readers[src], None)
            if item is None or (self.max_frames is not None and taken[src] >= self.max_frames):
                return _End()
            taken[src] += 1
            return item

        stepper = _Stepper(len(readers))
        while not self.stop.is_set():
            step = stepper.next(take)
            if step is None:
                return
            for stage in self.steps.names:
                self.steps.run(stage, step, self.steps.stream_of(stage))
            yield from step.results()

    # --- pipelined -------------------------------------------------------------------------------

    def _pipelined(self) -> Iterator[PoseFrame]:
        stop = self.stop
        self._inboxes = [
            LatestSlot() if s.is_live else _Queue(self.queue_size) for s in self.sources
        ]
        for i, (source, box) in enumerate(zip(self.sources, self._inboxes)):
            self._start(f"rtpose-read-{i}", self._reader, source, box)
        queues = [_Queue(self.queue_size) for _ in self.steps.names]
        self._start("rtpose-gather", self._gather, queues[0])
        for i, stage in enumerate(self.steps.names):
            out = queues[i + 1] if i + 1 < len(queues) else _Queue(self.queue_size)
            if i + 1 == len(queues):
                final = out
            self._start(f"rtpose-{stage}", self._stage, stage, queues[i], out)
        while True:
            item = final.get(stop)
            if isinstance(item, _Failure):
                stop.set()
                raise item.error
            if isinstance(item, _End):
                return
            yield from item.results()

    def _start(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _reader(self, source: FrameSource, box: Any) -> None:
        try:
            for n, (frame, ms) in enumerate(_read(source)):
                if self.stop.is_set() or (self.max_frames is not None and n >= self.max_frames):
                    break
                if isinstance(box, LatestSlot):
                    box.put((frame, ms))
                elif not box.put((frame, ms), self.stop):
                    break
            box.put(_End()) if isinstance(box, LatestSlot) else box.put(_End(), self.stop)
        except BaseException as exc:  # reaches the caller through the pipeline
            if isinstance(box, LatestSlot):
                box.put(_Failure(exc))
            else:
                box.put(_Failure(exc), self.stop)

    def _gather(self, out: _Queue) -> None:
        stepper = _Stepper(len(self.sources))
        try:
            while not self.stop.is_set():
                step = stepper.next(lambda src: self._inboxes[src].get(self.stop))
                if step is None:
                    break
                out.put(step, self.stop)
                if isinstance(step, _Failure):
                    return
            out.put(_End(), self.stop)
        except BaseException as exc:
            out.put(_Failure(exc), self.stop)

    def _stage(self, stage: str, inbox: _Queue, out: _Queue) -> None:
        stream = self.steps.stream_of(stage)
        own = None
        if stream is None and self.gpu_device is not None:
            from rtpose.cuda.streams import StageStream

            own = StageStream(self.gpu_device)
            stream = own.handle
        try:
            while True:
                item = inbox.get(self.stop)
                if isinstance(item, _End | _Failure):
                    out.put(item, self.stop)
                    return
                self.steps.run(stage, item, stream)
                if not out.put(item, self.stop):
                    return
        except _Stopped:
            return
        except BaseException as exc:
            out.put(_Failure(exc), self.stop)
        finally:
            if own is not None:
                own.synchronize()
