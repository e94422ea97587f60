"""The console has no settings of its own; it runs when no other platform is configured."""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import EnvReader


@dataclass(frozen=True)
class ConsoleSettings:
    """Nothing to configure: the console is never enabled by the environment, only as the fallback."""

    @property
    def enabled(self) -> bool:
        return False


def read_console_settings(r: EnvReader) -> ConsoleSettings:
    return ConsoleSettings()
