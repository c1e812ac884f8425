"""Benchmarks of the whole pipeline, above everything they measure.

- :mod:`rtpose.bench.synthetic`: crowd scenes, frames holding exactly N real people (person crops
  cut from the sample video, tiled on grey), so frame time can be measured against people per
  frame;
- :mod:`rtpose.bench.run`: the ``rtpose bench`` runner, ``VideoPoseStream`` on those scenes for
  every (people, streams) pair, and its JSON report (FPS, latency, per-stage times, machine,
  versions).

The command-line front end is :mod:`rtpose.cli.bench`.
"""
