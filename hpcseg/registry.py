"""The registry pattern every config group with kinds uses: schema class → implementation."""

from __future__ import annotations

from typing import Generic, TypeVar

from hpcseg.errors import UserError

T = TypeVar("T")


class Registry(dict[type, T], Generic[T]):
    """The implementations of one config group's kinds (dataset, cluster, container), keyed by
    the kind's schema class, so a config object finds its implementation by its type."""

    def __init__(self, group: str, kinds: dict[type, T]) -> None:
        super().__init__(kinds)
        self.group = group

    def of(self, cfg) -> T:
        """The implementation for ``cfg`` (an instance of a registered schema)."""
        try:
            return self[type(cfg)]
        except KeyError:
            raise UserError(
                f"{self.group}={cfg.name} is not supported by this version of hpcseg"
            ) from None
