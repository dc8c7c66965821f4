"""The same campaign on the embedded default: `portal serve` with SQLite, its in-process worker and the
outbox provider; the operator drives it with `portal campaign` commands from another shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.operators import operators_from_demo
from tests.stack import ROOT, wait_until
from tests.system.test_embedded_default import start

pytestmark = pytest.mark.embedded
MEMBERS = 5000


def test_a_campaign_runs_to_completion_on_the_embedded_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(PORTAL_DATABASE_URL=f"sqlite:///{tmp_path / 'var' / 'portal.db'}", PORTAL_DEMO_MEMBERS=str(MEMBERS),
               PORTAL_RECONCILE_SECONDS="1", PORTAL_OUTBOX_EVENT_DELAY_SECONDS="0.1")

    def portal(*argv: str, stdin: str = "") -> str:
        result = subprocess.run([sys.executable, "-m", "app.cli", *argv], env=env, cwd=ROOT, capture_output=True,
                                text=True, timeout=120, check=False, input=stdin)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    proc, _ = start(tmp_path, tmp_path / "serve.log", {k: v for k, v in env.items() if k.startswith("PORTAL_")})
    try:
        # The first start printed each demo login once; an operator copies them from there.
        staff = operators_from_demo((tmp_path / "serve.log").read_text())
        admin, approver = staff["admin@example.org"], staff["approver@example.org"]
        created = portal("campaign", "create", "--incident", "hq-2019", "--by", admin.email, stdin=admin.proof())
        campaign_id = created.split("campaign ", 1)[1].split()[0]
        portal("campaign", "approve", campaign_id, "--by", approver.email, stdin=approver.proof())
        portal("campaign", "send", campaign_id, "--by", admin.email, stdin=admin.proof())

        def finished() -> dict[str, object] | None:
            report = json.loads(portal("campaign", "status", campaign_id, "--json"))
            counts = report["counts"]
            settled = all(n == 0 for by in counts.values() for s, n in by.items() if s in ("queued", "sending", "sent"))
            return report if report["status"] == "completed" and settled else None

        report = wait_until(finished, 240, 1, what="the embedded campaign to finish; see serve.log")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    counts = report["counts"]  # type: ignore[index]
    no_email = report["no_address"]["email"]  # type: ignore[index]
    assert counts["email"]["failed"] == 0, "a missing address is not a failed delivery"
    assert counts["email"]["delivered"] + no_email == MEMBERS
    assert counts["sms"]["delivered"] == no_email, "members without email got the SMS version"
    newest = portal("outbox", "--last", "1")
    assert "ref " in newest and "Police Staff Association" in newest
