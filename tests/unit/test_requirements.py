"""requirements.txt (for buildpacks) pins every base dependency of pyproject.toml and what they need."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _base_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in project["dependencies"]]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"requirements.txt: {line!r} is not pinned with =="
        pins[canonicalize_name(name)] = version.strip()
    return pins


def test_requirements_pins_every_base_dependency_at_an_allowed_version() -> None:
    pins = _pins()
    for req in _base_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"requirements.txt has no pin for {req} (run: python3 tasks.py lock)"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"requirements.txt pins {req.name}=={pins[name]}, outside pyproject.toml's {req} "
            "(run: python3 tasks.py lock)"
        )


def test_requirements_pins_what_the_base_dependencies_need_in_turn() -> None:
    """The closure, walked through the installed packages' metadata: a new base dependency that brings its own
    dependencies fails here until requirements.txt is regenerated."""
    pins = _pins()
    missing: list[str] = []
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(req, "pyproject.toml") for req in _base_requirements()]
    while todo:
        req, wanted_by = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        if name not in pins:
            missing.append(f"{req.name} (needed by {wanted_by})")
            continue
        requires = metadata.requires(req.name) or []
        for line in requires:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                todo.append((sub, req.name))
    assert not missing, f"requirements.txt misses {', '.join(sorted(missing))} (run: python3 tasks.py lock)"


def test_requirements_installs_the_project_itself_editable() -> None:
    """Buildpacks run the Procfile's ``quotebot`` command from this folder: the project must be installed too."""
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()]
    assert "-e ." in lines
