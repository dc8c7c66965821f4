"""The monitoring files alert on metrics the portal really exports."""

from __future__ import annotations

import re

import yaml

from app.config import ROOT


def _exported() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        names |= set(re.findall(r'"(portal_[a-z_]+)"', path.read_text(encoding="utf-8")))
    return names


def test_every_alert_rule_names_metrics_the_portal_exports() -> None:
    rules = yaml.safe_load((ROOT / "ops" / "alerts.yml").read_text())
    exported = _exported()
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert exprs
    for expr in exprs:
        used = set(re.findall(r"portal_[a-z_]+", expr))
        assert used and used <= exported, f"{expr}: {used - exported} is not exported"
    prometheus = yaml.safe_load((ROOT / "ops" / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
