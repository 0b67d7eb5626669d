"""Structured JSON logs on stderr: one object per line, which Cloud Logging and CloudWatch
parse into fields. Secrets are redacted before a line is written."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from shared.observability.redact import redact, redact_value

_configured = False


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...extra}`` with secrets redacted."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "severity": record.levelname,  # the field name Cloud Logging reads
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(redact_value(fields))
        if record.exc_info:
            payload["exception"] = redact(self.formatException(record.exc_info))
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
