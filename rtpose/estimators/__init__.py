"""Estimators: one batch of frames in, persons out, given backends that run the networks.

- :mod:`rtpose.estimators.preprocess` builds every network input (letterboxed frames, person
  crops), for the estimators and for ``rtpose-build``'s calibration and accuracy gate alike;
- :mod:`rtpose.estimators.one_stage` (YOLO-pose: people and keypoints in one network call);
- :mod:`rtpose.estimators.top_down` (detector boxes -> crops -> pose network -> heatmap decode);
- :mod:`rtpose.estimators.results` (``Person``, ``PoseFrame``).

Estimators never load weights or open backends: :mod:`rtpose.pipeline.loading` does, from zoo
names, and passes the backends in.
"""
