"""Forms: a pydantic model per form, and errors shown the GOV.UK way (summary on top, message by each field).

    class CallbackForm(Form):
        messages = {"name": N_("Enter your name")}
        name: str = Field(max_length=100)

    result = parse_form(CallbackForm, fields, request)
    if not result.ok:
        return render(request, "page.html", {"form": result}, status_code=422)

Empty inputs count as not given, so a required field left empty reports "missing". A message is looked
up by "field.error_type", then "field", then by error type; messages are msgids translated per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from app.i18n import translations


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "translate later"
    """Mark a message for the catalog; it is translated when shown."""
    return message


GENERIC_MESSAGES = {
    "missing": N_("This field is required"),
    "string_too_long": N_("Enter no more than %(max_length)s characters"),
    "string_too_short": N_("Enter at least %(min_length)s characters"),
    "datetime_from_date_parsing": N_("Enter a real date and time"),
    "datetime_parsing": N_("Enter a real date and time"),
    "date_from_datetime_parsing": N_("Enter a real date"),
    "int_parsing": N_("Enter a whole number"),
    "bool_parsing": N_("Choose yes or no"),
    "enum": N_("Choose one of the options"),
    "literal_error": N_("Choose one of the options"),
}
FALLBACK_MESSAGE = N_("Check what you entered")
TOO_LARGE = N_("That number is too large")
# The databases' integers are 64-bit: a larger number typed into a form would be a 500 in the query.
INT_LIMIT = 2**63 - 1


class Form(BaseModel):
    """Base of every form model: strips whitespace, ignores fields it does not name (the CSRF token)."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="ignore")

    # field, or "field.error_type" -> msgid
    messages: ClassVar[dict[str, str]] = {}
    # Fields never sent back to the page when it is shown again.
    no_echo: ClassVar[frozenset[str]] = frozenset({"password"})

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_numbers(cls, value: Any) -> Any:
        if type(value) is int and not -INT_LIMIT <= value <= INT_LIMIT:
            raise ValueError(TOO_LARGE)
        return value


F = TypeVar("F", bound=Form)


@dataclass
class FormResult(Generic[F]):
    data: F | None = None
    errors: dict[str, str] = field(default_factory=dict)  # field -> translated message, in field order
    values: dict[str, str] = field(default_factory=dict)  # what was typed

    @property
    def ok(self) -> bool:
        return self.data is not None and not self.errors

    def add_error(self, name: str, message: str) -> None:
        """An error found after validation (by a service, say), shown like the others."""
        self.errors[name] = message
        self.data = None


def empty_form(values: dict[str, str] | None = None) -> FormResult[Any]:
    """A form shown for the first time (optionally filled in)."""
    return FormResult(values=dict(values or {}))


def form_fields(request: Request) -> dict[str, str]:
    """The posted urlencoded fields (read and bounded by the edge; first value of a repeated name)."""
    fields: dict[str, str] = {}
    for key, value in getattr(request.state, "form_fields", None) or []:
        fields.setdefault(key, value)
    return fields


FormFields = Annotated[dict[str, str], Depends(form_fields)]


def _message(model: type[Form], name: str, error: Any, gettext: Any) -> str:
    kind = error["type"]
    if kind == "value_error" and isinstance(error.get("ctx", {}).get("error"), ValueError):
        custom = str(error["ctx"]["error"])  # a validator's own msgid
        msgid = model.messages.get(f"{name}.{kind}") or custom
    else:
        msgid = (model.messages.get(f"{name}.{kind}") or model.messages.get(name)
                 or GENERIC_MESSAGES.get(kind) or FALLBACK_MESSAGE)
    text = gettext(msgid)
    try:
        return text % error.get("ctx", {}) if "%(" in text else text  # type: ignore[no-any-return]
    except (KeyError, TypeError, ValueError):
        return text  # type: ignore[no-any-return]


def parse_form(model: type[F], fields: dict[str, str], request: Request) -> FormResult[F]:
    """Validate posted fields against a form model; errors come back translated into the page's language."""
    gettext = translations(getattr(request.state, "lang", "en")).gettext
    values = {k: v for k, v in fields.items() if k in model.model_fields and k not in model.no_echo}
    given = {k: v for k, v in fields.items() if k in model.model_fields and v.strip() != ""}
    try:
        return FormResult(data=model.model_validate(given), values=values)
    except ValidationError as exc:
        found: dict[str, str] = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "__root__"
            found.setdefault(name, _message(model, name, error, gettext))
        order = list(model.model_fields)
        errors = dict(sorted(found.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
        return FormResult(errors=errors, values=values)
