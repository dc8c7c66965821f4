"""Notice templates render in a sandbox, escape per-member values in HTML and must carry the reference."""

from __future__ import annotations

import re

import pytest

from app.config import ROOT
from app.notices import rendering

SHARED = rendering.SharedValues(organisation="Org", helpline="0300 000 0000", portal_url="https://portal.example",
                                incident_title="Attack", incident_code="hq")
CATS = [rendering.Category("ni_number", "NI number", "Check your HMRC account.")]


def test_a_template_cannot_reach_python_internals() -> None:
    with pytest.raises(rendering.TemplateProblem):
        rendering.render_sms("{{ ''.__class__.__mro__[1].__subclasses__() }} {{ reference }}", SHARED, CATS,
                             rendering.SAMPLE_MEMBER)


def test_a_misspelt_variable_is_refused_when_the_campaign_is_written() -> None:
    with pytest.raises(rendering.TemplateProblem, match="refernce"):
        rendering.check_template("sms", "", "", "Hello {{ refernce }}", SHARED, CATS)


def test_every_notice_must_show_the_reference_code() -> None:
    with pytest.raises(rendering.TemplateProblem, match="reference"):
        rendering.check_template("sms", "", "", "Hello {{ first_name }}", SHARED, CATS)
    with pytest.raises(rendering.TemplateProblem, match="reference"):
        rendering.check_template("email", "Hi", "<p>{{ first_name }}</p>", "{{ first_name }}", SHARED, CATS)


def test_an_sms_that_renders_too_long_is_refused() -> None:
    with pytest.raises(rendering.TemplateProblem, match="1600"):
        rendering.check_template("sms", "", "", "{{ reference }}" + "x" * 1700, SHARED, CATS)


def test_email_variant_has_placeholders_and_member_values_are_escaped_only_in_html() -> None:
    content = rendering.render_email_variant(
        "Ref {{ reference }}", "<p>Dear {{ first_name }}</p><p>{{ categories[0].guidance }}</p>",
        "Dear {{ first_name }}", SHARED, CATS)
    subs = rendering.email_substitutions({"first_name": "Siân <O'Brien>", "reference": "ABCD-EFGH-JKMN"})

    def apply(text: str) -> str:
        for key, value in subs.items():
            text = text.replace(key, value)
        return text

    assert apply(content.subject) == "Ref ABCD-EFGH-JKMN"
    assert apply(content.text) == "Dear Siân <O'Brien>"
    assert "Dear Siân &lt;O&#x27;Brien&gt;" in apply(content.html)
    assert "Check your HMRC account." in content.html


def test_sms_is_rendered_whole_for_each_member() -> None:
    source = "{{ first_name }} ref {{ reference }} {% for c in categories %}{{ c.name }}{% endfor %}"
    body = rendering.render_sms(source, SHARED, CATS, {"first_name": "Ann", "reference": "ABCD-EFGH-JKMN"})
    assert body == "Ann ref ABCD-EFGH-JKMN NI number"


@pytest.mark.parametrize("html_source", [
    "<p>{{ first_name|upper }} {{ reference }}</p>",
    "<p>{{ reference }}{% if branch == 'Example Branch' %} here{% endif %}</p>",
    "<p>{{ reference|lower }}</p>",
])
def test_an_email_template_that_changes_member_values_is_refused(html_source: str) -> None:
    with pytest.raises(rendering.TemplateProblem, match="as they are"):
        rendering.check_template("email", "Notice {{ reference }}", html_source, "Ref {{ reference }}", SHARED, CATS)


def test_an_email_template_showing_member_values_as_they_are_is_accepted() -> None:
    rendering.check_template(
        "email", "{{ organisation }}: notice for {{ first_name }}",
        "<p>Dear {{ first_name }} {{ last_name }} ({{ branch }})</p><p>{{ reference }}</p>"
        "{% for c in categories %}<h2>{{ c.name|upper }}</h2>{% endfor %}",
        "Dear {{ first_name }}, your reference is {{ reference }}.", SHARED, CATS)


MEMBERS = [
    {"first_name": "Ann", "last_name": "Lee", "branch": "Kent", "reference": "ABCD-EFGH-JKMN"},
    {"first_name": "  Siân {{ x }} <O'Brien>", "last_name": "", "branch": "Dyfed-Powys", "reference": "ZZZZ-0000-1111"},
    {"first_name": "", "last_name": "Ng", "reference": "AAAA-BBBB-CCCC"},  # no branch at all
]


@pytest.mark.parametrize(("source", "as_they_are"), [
    ("  {{ first_name }} {{ last_name }} ref {{ reference }}{% for c in categories %} {{ c.name }}{% endfor %}\n",
     True),
    ("{% for c in categories %}{{ reference }} {{ c.guidance }} {% endfor %}{{ branch }}", True),
    ("{{ first_name|upper }} {{ reference }}", False),
    ("{% if branch == 'Kent' %}Kent {% endif %}{{ reference }}", False),
    ("{% set first_name = 'X' %}{{ first_name }} {{ reference }}", False),
    ("{{ reference }} {{ first_name ~ '!' }}", False),
])
def test_an_sms_variant_rendered_once_reads_as_rendering_it_for_each_member(source: str, as_they_are: bool) -> None:
    assert rendering.shows_member_values_as_they_are(source) is as_they_are
    render = rendering.sms_renderer(source, SHARED, CATS)
    for member in MEMBERS:
        direct = rendering.render(source, rendering._context(SHARED, CATS, {
            n: member.get(n, "") for n in rendering.PER_MEMBER})).strip()
        assert render(member) == direct
        assert member["reference"] in direct


def test_the_default_sms_templates_are_rendered_once_per_variant() -> None:
    from pathlib import Path

    paths = sorted((Path(__file__).resolve().parents[2] / "templates/notices/breach").glob("sms.*.txt"))
    assert len(paths) == 2
    for path in paths:
        assert rendering.shows_member_values_as_they_are(path.read_text())


# --- the default templates, as members read them -------------------------------------------------
DEFAULTS = ROOT / "templates" / "notices" / "breach"
MEMBER = {"first_name": "Siân", "last_name": "Jones", "branch": "Gwent", "reference": "ABCD-EFGH-JKMN"}
REAL = rendering.SharedValues(organisation="Police Federation", helpline="0300 123 4567",
                              portal_url="https://portal.example.org",
                              incident_title="Cyber attack on our headquarters systems", incident_code="hq-2019")


CATS_CY = [rendering.Category("ni_number", "Rhif Yswiriant Gwladol", "Gwiriwch eich cyfrif gyda CThEF.")]


def _default(language: str) -> dict[str, str]:
    cats = CATS_CY if language == "cy" else CATS
    subject = (DEFAULTS / f"email.{language}.subject").read_text("utf-8")
    content = rendering.render_email_variant(subject, (DEFAULTS / f"email.{language}.html").read_text("utf-8"),
                                             (DEFAULTS / f"email.{language}.txt").read_text("utf-8"), REAL, cats)
    filled = rendering._fill(content, rendering.email_substitutions(MEMBER))
    sms = rendering.render_sms((DEFAULTS / f"sms.{language}.txt").read_text("utf-8"), REAL, cats, MEMBER)
    return {"subject": filled.subject, "text": filled.text, "html": filled.html, "sms": sms}


def test_the_default_sms_says_what_a_member_can_see_and_do_in_both_languages() -> None:
    assert _default("en")["sms"] == (
        "Police Federation: Siân, your data was involved in an incident: Cyber attack on our headquarters systems."
        " To see which data was affected and what to do, type https://portal.example.org/check into your"
        " browser yourself. Ref ABCD-EFGH-JKMN. Helpline 0300 123 4567.")
    assert _default("cy")["sms"] == (
        "Police Federation: Siân, roedd eich data yn rhan o ddigwyddiad: Cyber attack on our headquarters systems."
        " I weld pa ddata a effeithiwyd a beth i'w wneud, teipiwch https://portal.example.org/check yn eich"
        " porwr eich hun. Cyf ABCD-EFGH-JKMN. Llinell gymorth 0300 123 4567.")


def test_the_default_sms_keeps_to_gsm7_in_both_languages_so_it_costs_two_segments() -> None:
    from app.kit.sms import sms_cost

    for language in ("en", "cy"):
        member = {**MEMBER, "first_name": "Sian"}
        body = rendering.render_sms((DEFAULTS / f"sms.{language}.txt").read_text("utf-8"), REAL, CATS, member)
        assert (sms_cost(body).encoding, sms_cost(body).segments) == ("GSM-7", 2), language


@pytest.mark.parametrize("language", ["en", "cy"])
def test_every_default_template_reads_as_whole_sentences(language: str) -> None:
    rendered = _default(language)
    for part, body in rendered.items():
        words = re.findall(r"[\w']+", re.sub(r"<[^>]*>", " ", body).lower())
        doubled = [a for a, b in zip(words, words[1:], strict=False) if a == b and a not in {"ar"}]
        assert doubled == [], f"{part}: a word twice in a row"
        assert not re.search(r"\b(what and what|beth a beth)\b", body.lower()), part
        assert "{{" not in body and "{%" not in body and "ABCD-EFGH-JKMN" in body, part
    english = {"the", "your", "what", "and", "to", "you", "of", "our"}
    if language == "cy":
        own = [w for part in ("subject", "text", "sms") for w in re.findall(r"[a-z']+", rendered[part])
               if w in english and w not in {"to"}]
        # Only the incident's own (untranslated) title may bring English words into the Welsh notice.
        title = set(REAL.incident_title.lower().split())
        assert [w for w in own if w not in title] == [], "English words in the Welsh notice"
    assert rendered["html"].startswith("<!doctype html>") and f'lang="{language}"' in rendered["html"]
