"""Structured JSON logs on stderr: one object per line, which Cloud Logging and CloudWatch
parse into fields. Secrets are redacted before a line is written.

A line is bounded: the message, the exception text (marked ``…`` when cut) and every string
among the fields are cut before they are redacted, so a log call costs the same on a client's 60 kB
path or a model's 16,000-character tool name as on a short one."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from shared.observability.redact import redact, redact_value

_configured = False

MAX_MESSAGE_CHARS = 8_192
MAX_EXCEPTION_CHARS = 32_768
MAX_FIELD_CHARS = 16_384  # each string among the structured fields


def bounded(text: str, limit: int) -> str:
    """``text`` redacted, cut to ``limit`` characters (with ``…`` when cut)."""
    return redact(text, limit) + ("…" if len(text) > limit else "")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...extra}`` with secrets redacted."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "severity": record.levelname,  # the field name Cloud Logging reads
            "logger": record.name,
            "message": bounded(record.getMessage(), MAX_MESSAGE_CHARS),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(redact_value(fields, MAX_FIELD_CHARS))
        if record.exc_info:
            payload["exception"] = bounded(self.formatException(record.exc_info), MAX_EXCEPTION_CHARS)
        return json.dumps(payload, default=str)


def configure(level: str = "INFO") -> None:
    """Install the JSON formatter on the root logger once per process."""
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "anthropic", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)  # one line per request is ours to write
    _configured = True


def log_event(logger: logging.Logger, message: str, **fields: Any) -> None:
    """Log ``message`` with structured ``fields``."""
    logger.info(message, extra={"fields": fields})
