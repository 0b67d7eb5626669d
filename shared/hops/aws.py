"""Gateway → team calls on AWS: a synchronous Lambda ``Invoke`` with a Function URL event.

A team URL ``lambda://FUNCTION`` in ``MULTIAGENT_TEAM_URLS`` names the team's function. The
call is sent as the payload-2.0 event a Function URL would deliver, so the team's Mangum
``handler`` serves it exactly like an HTTP request, and its response object comes back as
``(status, headers, body)``. IAM decides who may invoke: only the gateway's role has
``lambda:InvokeFunction`` on the team functions, which have no URL.

boto3 is imported when the first call is made. Nothing is retried: an operation may have
been charged, and the client's ``Idempotency-Key`` is the way to retry safely.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from shared.errors import Unavailable
from shared.lazy import Lazy

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # synchronous Invoke's request and response limit


def function_url_event(method: str, path: str, headers: dict[str, str], body: bytes, query: str = "",
                       source_ip: str = "127.0.0.1") -> dict[str, Any]:
    """The Lambda Function URL (payload format 2.0) event of one HTTP request."""
    now = time.time()
    lowered = {k.lower(): v for k, v in headers.items()}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "multiagent-gateway",
            "domainName": lowered.get("host", "lambda.invoke"),
            "domainPrefix": "lambda",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": lowered.get("user-agent", "multiagent-gateway")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(body).decode() if body else "",
        "isBase64Encoded": bool(body),
    }


def parse_function_response(payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """``(status, headers, body)`` from a handler's Function URL response object."""
    body = payload.get("body") or ""
    raw = base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode()
    headers = {str(k): str(v) for k, v in (payload.get("headers") or {}).items()}
    if payload.get("cookies"):
        headers["set-cookie"] = ", ".join(payload["cookies"])
    return int(payload.get("statusCode", 200)), headers, raw


class LambdaInvoker:
    """``team_transport`` for :class:`~shared.remote.RemoteTeams` over Lambda ``Invoke``."""

    def __init__(self, client: Any = None, region: str | None = None, timeout_s: float = 135.0) -> None:
        self.region = region
        self.timeout_s = timeout_s
        self._client: Lazy[Any] = Lazy(self._make_client, client)

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=2, read_timeout=self.timeout_s, max_pool_connections=64,
                        retries={"total_max_attempts": 1})
        return boto3.session.Session().client("lambda", region_name=self.region, config=config)

    def _get_client(self) -> Any:
        return self._client.get()

    def invoke(self, function: str, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """One synchronous invoke (blocking)."""
        from botocore.exceptions import BotoCoreError, ClientError

        payload = json.dumps(event).encode()
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise Unavailable(f"request to {function} is over Lambda's 6 MB invoke limit", retry_after_s=1)
        try:
            out = self._get_client().invoke(FunctionName=function, InvocationType="RequestResponse", Payload=payload)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise Unavailable(f"Lambda Invoke {function}: {error.get('Code')}: {error.get('Message')}",
                              retry_after_s=2) from None
        except BotoCoreError as exc:
            raise Unavailable(f"Lambda Invoke {function}: {exc}", retry_after_s=2) from None
        raw = out["Payload"].read()
        if out.get("FunctionError"):
            raise Unavailable(f"team function {function} failed: {raw[:300].decode(errors='replace')}",
                              retry_after_s=2)
        try:
            return parse_function_response(json.loads(raw))
        except (ValueError, TypeError, AttributeError) as exc:
            raise Unavailable(f"team function {function} answered a non-HTTP payload: {exc}", retry_after_s=2) from None

    async def __call__(self, method: str, url: str, headers: dict[str, str],
                       body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send one HTTP-shaped request to ``lambda://FUNCTION/path?query``."""
        parts = urlsplit(url)
        if parts.scheme != "lambda" or not parts.netloc:
            raise Unavailable(f"{url!r} is not a lambda://FUNCTION URL", retry_after_s=1)
        event = function_url_event(method, parts.path or "/", headers, body, parts.query)
        return await asyncio.to_thread(self.invoke, parts.netloc, event)
