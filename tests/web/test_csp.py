"""Content Security Policy: no inline script or style anywhere; every page, as rendered, keeps to it."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import ROOT
from app.members.models import Member
from tests.factories import import_members, member_row
from tests.web.conftest import csrf_token, make_staff

# Inline code the policy blocks: <script> without src, <style>, style="", on...="" handlers, javascript: URLs.
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style[\s>]", re.I), "a <style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "a style= attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an on...= event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]
SKIP_PAGES = ("/metrics", "/webhooks/", "/static")


def inline_code(html: str) -> list[str]:
    return [what for pattern, what in INLINE if pattern.search(html)]


def test_the_policy_allows_no_inline_script_or_style(web: TestClient) -> None:
    for answer in (web.get("/"), web.get("/no-such-page"), web.get("/static/css/site.css"), web.post("/t/record")):
        policy = dict(part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";"))
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
        assert "unsafe" not in answer.headers["content-security-policy"]
        assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"


def test_no_template_carries_inline_code() -> None:
    found = {}
    for path in sorted(Path(ROOT / "templates").rglob("*.html")):
        if "notices" in path.parts:  # e-mails, not pages: they are never served under the policy
            continue
        problems = inline_code(path.read_text())
        if problems:
            found[str(path.relative_to(ROOT))] = problems
    assert not found, found


def test_javascript_lives_in_static_files_and_pages_use_them(web: TestClient) -> None:
    scripts = re.findall(r'<script src="([^"]+)"', web.get("/").text)
    assert scripts and all(src.startswith("/static/js/") for src in scripts)
    for src in scripts:
        assert web.get(src).status_code == 200


def page_paths(app: FastAPI) -> list[str]:
    paths = []
    for context in iter_route_contexts(app.routes):
        path = context.path or ""
        if isinstance(context.original_route, APIRoute) and "GET" in context.original_route.methods \
                and "{" not in path and not path.startswith(SKIP_PAGES) and not path.startswith("/t/"):
            paths.append(path)
    return sorted(set(paths))


def test_every_page_as_rendered_keeps_to_the_policy(edge_app: FastAPI, session: Session) -> None:
    """Anonymous, then as a member and as staff of each role: every page the route table lists."""
    import_members(session, member_row("CSP0001"))
    member_id = session.scalars(select(Member.id).where(Member.membership_number == "CSP0001")).one()
    visitors: list[tuple[str, str, int]] = [("anonymous", "", 0), ("member", "member", member_id)]
    for role in ("agent", "supervisor", "admin", "auditor", "branch_viewer"):
        visitors.append((role, "staff", make_staff(session, email=f"{role}@example.org", role=role).id))
    found: dict[str, list[str]] = {}
    seen = 0
    for who, kind, subject in visitors:
        with TestClient(edge_app) as client:
            if kind:
                client.post(f"/t/sign-in/{kind}/{subject}", data={"csrf_token": csrf_token(client)})
            for path in page_paths(edge_app):
                for lang in ("en", "cy"):
                    answer = client.get(f"{path}?lang={lang}")
                    if "text/html" not in answer.headers.get("content-type", ""):
                        continue
                    seen += 1
                    problems = inline_code(answer.text)
                    if problems:
                        found[f"{who} {path}?lang={lang} ({answer.status_code})"] = problems
    assert seen >= 10, "the route table gave pages to check"
    assert not found, found
