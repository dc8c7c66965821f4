"""The layers of CONTRIBUTING.md hold: import-linter's contracts in pyproject.toml, checked on every run."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {c["id"]: c for c in CONFIG["contracts"]}


def test_every_import_contract_is_kept() -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, (
        "an import breaks a layering contract (pyproject.toml [tool.importlinter], CONTRIBUTING.md 'Layers'):\n"
        + result.stdout[result.stdout.find("Contracts"):] + result.stderr
    )


def test_the_contracts_say_what_the_design_asks() -> None:
    assert CONTRACTS["routers-no-repositories"]["forbidden_modules"] == [
        "app.**.repository", "app.callbacks.queue_repository", "app.kit.repository"]
    assert CONTRACTS["actors-from-entry-points"]["protected_modules"] == ["app.tasks", "app.**.tasks"]
    assert set(CONTRACTS["sdks-in-providers"]["protected_modules"]) == {"twilio", "sendgrid", "python_http_client"}
    assert CONTRACTS["sdks-in-providers"]["allowed_importers"] == ["app.providers"]


def test_no_contract_is_empty_because_a_module_moved() -> None:
    graph = grimp.build_graph("app", include_external_packages=True)
    for expression in ["app.**.router", "app.**.repository", "app.**.tasks", "twilio", "sendgrid",
                       "python_http_client", "app.kit"]:
        assert graph.find_matching_modules(expression), f"{expression} matches no module: the contract guards nothing"
    # The SDK contract would pass vacuously if the providers stopped importing the SDKs by these names.
    assert {"twilio", "sendgrid"} <= {m.split(".")[0] for p in ["app.providers"]
                                      for m in graph.find_upstream_modules(p, as_package=True)}


def test_the_kit_contract_names_every_domain() -> None:
    domains = {p.parent.name for p in (ROOT / "app").glob("*/__init__.py")} - {"kit"}
    listed = {m.removeprefix("app.") for m in CONTRACTS["kit-is-domain-free"]["forbidden_modules"]}
    assert listed == domains, "a new package under app/ goes into the 'kit-is-domain-free' contract"


def _modules_named(pattern: str) -> set[str]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "app").rglob(pattern)}


def test_the_router_contract_covers_every_module_that_defines_routes() -> None:
    graph = grimp.build_graph("app")
    sources = CONTRACTS["routers-no-repositories"]["source_modules"]
    covered = set().union(*(graph.find_matching_modules(e) for e in sources))
    defining = {m for m in _modules_named("*.py") if "APIRouter(" in (ROOT / (m.replace(".", "/") + ".py")).read_text()}
    assert defining and defining <= covered, f"modules that define routes outside the contract: {defining - covered}"


def test_the_router_contract_forbids_every_repository_module() -> None:
    graph = grimp.build_graph("app")
    forbidden = set().union(*(graph.find_matching_modules(e)
                              for e in CONTRACTS["routers-no-repositories"]["forbidden_modules"]))
    repositories = _modules_named("*repository.py")
    assert repositories and repositories <= forbidden, f"repositories a router may import: {repositories - forbidden}"
