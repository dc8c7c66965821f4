"""The dependency tree is locked: every package pinned with hashes, and this environment installed from it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement

from app.config import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)(?: ; ([^\\\n]+))?", re.MULTILINE)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    """Name to version for this interpreter and platform (the lock is universal, with markers)."""
    return {_normal(name): version for name, version, marker in PIN.findall((ROOT / "requirements.lock").read_text())
            if not marker or Marker(marker.strip()).evaluate()}


def test_every_declared_dependency_is_pinned_in_the_lock() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    locked = _locked()
    missing = [req for req in declared if _normal(Requirement(req).name) not in locked]
    assert not missing, f"in pyproject.toml but not in requirements.lock (run scripts/lock.sh): {missing}"
    for req in declared:
        parsed = Requirement(req)
        assert parsed.specifier.contains(locked[_normal(parsed.name)], prereleases=True), \
            f"requirements.lock pins {parsed.name}=={locked[_normal(parsed.name)]}, outside {req}"


def test_every_pin_carries_hashes() -> None:
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    pins = [block for block in blocks if PIN.match(block)]
    assert len(pins) > 50
    unhashed = [block.split()[0] for block in pins if "--hash=sha256:" not in block]
    assert not unhashed


def test_this_environment_was_installed_from_the_lock() -> None:
    drifted = {}
    for name, version in _locked().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a package for another platform or Python (the lock is universal)
        if installed != version:
            drifted[name] = (installed, version)
    assert not drifted, f"installed vs locked: {drifted}"
