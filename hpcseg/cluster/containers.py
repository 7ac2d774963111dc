"""Container kinds: how workers (or, in runner mode, whole processes) run inside an image.

A kind is a :class:`ContainerKind`: ``check(container_cfg)`` refuses a missing runtime or image
before anything starts; ``launcher(cfg, output_dir)`` gives the command prefix that starts a
worker's Python inside the image (None: no container) and what to record about the image;
``reexec(cfg, output_dir, argv)`` gives the command that re-runs this very invocation inside
the image (None: already inside, or no container). ``none`` is defined here, ``apptainer`` in
:mod:`hpcseg.cluster.apptainer`; adding Podman or Charliecloud is a module and a registry line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hpcseg.config.schemas import ContainerConfig


@dataclass(frozen=True)
class ContainerKind:
    schema: type
    check: Callable[[ContainerConfig], None]
    launcher: Callable[[object, Path], tuple[list[str] | None, dict | None]]
    reexec: Callable[[object, Path, list[str]], list[str] | None]


NONE = ContainerKind(
    schema=ContainerConfig,
    check=lambda cfg: None,
    launcher=lambda cfg, output_dir: (None, None),
    reexec=lambda cfg, output_dir, argv: None,
)
