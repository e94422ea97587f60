"""Short keys for long values (queries behind buttons), so button ids stay small."""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol


class Memo(Protocol):
    """Key-value memory for button state; a database-backed one survives restarts."""

    async def put(self, key: str, value: str) -> None: ...

    async def get(self, key: str) -> str | None: ...


class InMemoryMemo:
    """A bounded in-process memo (least recently used entries are forgotten)."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._items: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    async def put(self, key: str, value: str) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    async def get(self, key: str) -> str | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value
