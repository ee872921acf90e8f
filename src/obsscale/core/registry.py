"""One registry type for every pluggable name: links, optimisers, splits, checkers, backends,
figures.  `register` refuses a duplicate name; `get` of an unknown name raises `UnknownNameError`
listing the known names and the closest one."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from obsscale.core.errors import UnknownNameError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Names → objects of one kind (`what` names the kind in error messages)."""

    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """`registry.register("name", obj)`, or `@registry.register("name")` as a decorator.

        A class registered this way gets `name` as its `name` attribute."""
        if obj is not None:
            return self._add(name, obj)

        def deco(o: T) -> T:
            return self._add(name, o)

        return deco

    def _add(self, name: str, obj: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.what} '{name}' is registered twice")
        self._items[name] = obj
        if isinstance(obj, type):
            obj.name = name  # type: ignore[attr-defined]
        return obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._items))
            raise UnknownNameError(
                f"unknown {self.what} '{name}' (known: {known}){did_you_mean(name, self._items)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self):
        return self._items.items()

    def __getitem__(self, name: str) -> T:
        return self.get(name)
