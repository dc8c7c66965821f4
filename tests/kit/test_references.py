"""References: what is printed at the end of every message, read back however people type it."""

from __future__ import annotations

from app.kit.references import new_reference, normalise_reference


def test_reference_codes_are_normalised_from_what_people_type() -> None:
    code = new_reference()
    assert normalise_reference(code.lower().replace("-", " ")) == code
    assert normalise_reference("abcd efgh jk1o") == "ABCD-EFGH-JK10"
