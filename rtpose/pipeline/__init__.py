"""Pipelines: single-image estimation and streaming video pose estimation."""

from rtpose.pipeline.results import Person, PoseFrame

__all__ = ["Person", "PoseFrame"]
