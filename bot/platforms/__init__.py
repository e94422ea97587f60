"""The platform registry: one package per platform, each exporting ``SPEC`` (a ``bot.platform.PlatformSpec``).

To add a platform, create ``bot/platforms/<name>/`` (see ``bot.platform``) and add its name below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from bot.platform import PlatformSpec

if TYPE_CHECKING:
    from config.settings import EnvReader

REGISTRY: tuple[str, ...] = (
    "console",
    "discord",
    "slack",
    "web",
)


@cache
def specs() -> tuple[PlatformSpec, ...]:
    """Every registered platform's spec, in registry order."""
    return tuple(importlib.import_module(f"{__name__}.{name}").SPEC for name in REGISTRY)


def spec(name: str) -> PlatformSpec:
    """The spec of platform ``name``; ``KeyError`` when no such platform is registered."""
    for s in specs():
        if s.name == name:
            return s
    raise KeyError(name)


def names() -> tuple[str, ...]:
    """The registered platform names, e.g. for ``--platform`` choices."""
    return tuple(s.name for s in specs())


def settings_sections() -> list[tuple[str, Callable[[EnvReader], Any]]]:
    """``(name, read_settings)`` of every registered platform, for ``config.settings.load_settings``."""
    return [(s.name, s.read_settings) for s in specs()]
