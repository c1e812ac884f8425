"""Exception hierarchy.

Caller mistakes raise built-in exceptions (``ValueError``, ``TypeError``, ``FileNotFoundError``);
everything that goes wrong inside rtpose or its inputs' contents raises an ``RtposeError``.
"""

from __future__ import annotations


class RtposeError(Exception):
    """Base class of every rtpose-specific error."""


class DecodeError(RtposeError):
    """A video or image could not be opened or decoded (corrupt, truncated, empty, not a video)."""


class CheckpointError(RtposeError):
    """A weights file is unreadable, corrupt, or belongs to a different architecture."""


class AssetError(RtposeError):
    """A default asset (weights, sample video) is missing or could not be fetched or verified."""


class BackendUnavailableError(RtposeError):
    """The requested inference backend cannot run on this machine."""


class UnknownModelError(RtposeError, ValueError):
    """A model name that is not in the zoo (also a ``ValueError``: the caller passed it)."""


class EngineBuildError(RtposeError):
    """An engine could not be built or does not fit this machine/TensorRT."""


class InferenceError(RtposeError):
    """A built engine or model could not be loaded or run at run time (an incompatible or
    damaged engine, a backend that failed during inference). Building one raises
    :class:`EngineBuildError` instead."""


class KernelError(InferenceError):
    """A native (C++/CUDA) kernel failed; the message names the op and the underlying error."""
