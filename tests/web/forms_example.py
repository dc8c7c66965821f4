"""The example form the tests post to (the same shape as CONTRIBUTING.md's example)."""

from __future__ import annotations

from pydantic import Field, field_validator

from app.web.forms import N_, Form


class ExampleForm(Form):
    messages = {"name.missing": N_("Enter your name")}

    name: str = Field(max_length=100)
    password: str = ""
    urgent: bool = False

    @field_validator("name")
    @classmethod
    def no_digits(cls, value: str) -> str:
        if any(ch.isdigit() for ch in value):
            raise ValueError(N_("Name must not contain numbers"))
        return value
