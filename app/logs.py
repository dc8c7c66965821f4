"""Structured logs carrying the request id of the request being served."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar

from app.kit.redact import mask_contacts

request_id: ContextVar[str] = ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class ContactMaskingFilter(logging.Filter):
    """A safety net: any email address or phone number that reaches a log line is masked.

    The sources keep contacts out (queue messages carry ids, provider errors are masked when raised,
    the SDKs' request loggers are quiet); this catches what a future line or a library lets through,
    in the message, its arguments and a traceback alike.
    """

    _traceback = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_contacts(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._traceback.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_contacts(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_contacts(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        for key in ("method", "path", "status", "duration_ms"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_text or record.exc_info:
            out["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(out)


def configure_logging(level: str, *, as_json: bool) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(ContactMaskingFilter())
    handler.setFormatter(
        JsonFormatter() if as_json
        else logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Twilio SDK logs about ten INFO lines per API request: a 120,000-message campaign would bury
    # everything else, and writing them cost a third of a sender's time. Pika narrates every connection.
    # Both SDKs' request loggers would also write the request itself, addresses and numbers included.
    for chatty in ("twilio.http_client", "python_http_client", "pika"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
