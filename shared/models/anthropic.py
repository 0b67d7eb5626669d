"""Anthropic, Bedrock and Vertex providers: one class over the SDK's three async clients.

The SDK is imported when the provider is built, not when this module is imported; the
gateway builds it in a background thread once it listens, so ``/health`` answers before
the SDK's ~0.9 s import has finished.
"""

from __future__ import annotations

import sys
from typing import Any

from shared.errors import ModelError, Timeout, Unavailable
from shared.models.base import ModelRequest, ModelResponse, Usage, failed_request

# Answers the provider never bills; another attempt may succeed.
_RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504, 529)


class AnthropicProvider:
    """:class:`~shared.models.base.ModelProvider` over ``anthropic.AsyncAnthropic`` and
    its Bedrock and Vertex twins. The client is built once per instance."""

    def __init__(self, name: str = "anthropic", api_key: str | None = None, max_retries: int = 0) -> None:
        # max_retries=0: the SDK would retry a timed-out request (which the provider may
        # bill) under the same reservation; the budget guard retries instead, each attempt
        # reserved and charged on its own.
        import anthropic

        self.name = name
        self._sdk = anthropic
        if name == "anthropic":
            self.client: Any = anthropic.AsyncAnthropic(api_key=api_key, max_retries=max_retries)
        elif name == "bedrock":
            self.client = anthropic.AsyncAnthropicBedrock(max_retries=max_retries)
        elif name == "vertex":
            self.client = anthropic.AsyncAnthropicVertex(max_retries=max_retries)
        else:  # pragma: no cover - guarded by Settings
            raise ValueError(name)

    def resolve_model(self, model: str) -> str:
        """Model ids are passed through unchanged."""
        return model

    async def aclose(self) -> None:
        """Close the SDK's connection pool while its event loop still runs (left to the
        garbage collector, it is closed on a dead loop and logs an error)."""
        await self.client.close()

    @staticmethod
    def _params(request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"model": request.model, "system": request.system, "messages": request.messages}
        if request.tools:
            params["tools"] = request.tools
        if request.tool_choice:
            params["tool_choice"] = request.tool_choice
        return params

    async def count_tokens(self, request: ModelRequest) -> int | None:
        """``messages.count_tokens`` (free, not billed); None where the client has none
        (Bedrock through this SDK) or the count fails: the guard then keeps the byte bound."""
        counter = getattr(self.client.messages, "count_tokens", None)
        if counter is None:
            return None
        try:
            counted = await counter(**self._params(request), timeout=min(10.0, request.timeout_s))
        except self._sdk.APIError:
            return None
        value = getattr(counted, "input_tokens", None)
        return value if type(value) is int and value >= 0 else None

    async def create(self, request: ModelRequest) -> ModelResponse:
        """One Messages API request; SDK errors become problem errors marked with whether
        the request may have been billed (see :func:`failed_request`)."""
        sdk = self._sdk
        try:
            # The SDK builds, sends and checks the request; its answer is read as the JSON it
            # is: building the SDK's pydantic models of it cost ~15 % of the call's CPU, and the
            # loop needs plain blocks and the usage counts (which the budget guard checks).
            raw = await self.client.messages.with_raw_response.create(
                **self._params(request), max_tokens=request.max_tokens, timeout=request.timeout_s)
            answer = raw.http_response.json()
        except sdk.APITimeoutError as exc:
            raise failed_request(Timeout(f"the model provider did not answer within {request.timeout_s:.0f} s"),
                                 may_have_billed=True, retry=True) from exc
        except sdk.APIConnectionError as exc:
            # Refused before the request went out: never billed. Broken after: maybe.
            raise failed_request(Unavailable(f"cannot reach the model provider: {exc}", retry_after_s=2),
                                 may_have_billed=not _never_connected(exc.__cause__), retry=True) from exc
        except sdk.APIStatusError as exc:  # an error answer: the provider bills none
            status, retry = exc.status_code, exc.status_code in _RETRY_STATUSES
            if status == 429:
                error: Any = Unavailable("the model provider is rate limiting this deployment",
                                         retry_after_s=_retry_after(exc))
            elif status in (529, 503):
                error = Unavailable("the model provider is overloaded", retry_after_s=_retry_after(exc))
            elif status in (401, 403):
                error = ModelError("the model provider rejected this deployment's credentials")
            else:
                error = ModelError(f"the model provider answered {status}: {_message(exc)}")
            raise failed_request(error, may_have_billed=False, retry=retry,
                                 retry_after_s=_retry_after(exc) if _has_hint(exc) else None) from exc
        except ValueError as exc:  # a success status with a body that is not JSON: it may be billed
            raise failed_request(ModelError(f"the model provider's answer is not JSON: {str(exc)[:200]}"),
                                 may_have_billed=True, retry=False) from exc
        return _response(answer, request.model)


def _never_connected(cause: BaseException | None) -> bool:
    """True when ``cause`` is a failure to connect, of whichever HTTP library the SDK runs on
    (anthropic 2.x: httpx2; earlier: httpx): nothing was sent, so nothing can be billed."""
    for name in ("httpx2", "httpx"):
        module = sys.modules.get(name)
        if module is not None and isinstance(cause, module.ConnectError | module.ConnectTimeout):
            return True
    return False


def _response(answer: Any, requested_model: str) -> ModelResponse:
    """A Messages API answer (its JSON) as a :class:`ModelResponse`. Nothing in it is
    trusted: a missing or malformed part reads as empty, and usage is passed on as
    reported (the budget guard charges the worst case for usage that is not sane)."""
    if not isinstance(answer, dict):
        raise failed_request(ModelError("the model provider's answer is not a JSON object"),
                             may_have_billed=True, retry=False)
    usage = answer.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    blocks = answer.get("content")
    model, answer_id = answer.get("model"), answer.get("id")
    return ModelResponse(
        model=model if isinstance(model, str) and model else requested_model,
        # null members dropped, as the SDK's model_dump(exclude_none=True) did: the blocks go back in the next turn
        content=[{k: v for k, v in block.items() if v is not None}
                 for block in (blocks if isinstance(blocks, list) else []) if isinstance(block, dict)],
        stop_reason=answer.get("stop_reason") if isinstance(answer.get("stop_reason"), str) else None,
        id=answer_id if isinstance(answer_id, str) else None,
        usage=Usage(
            input_tokens=usage.get("input_tokens"),  # type: ignore[arg-type]
            output_tokens=usage.get("output_tokens"),  # type: ignore[arg-type]
            cache_write_tokens=usage.get("cache_creation_input_tokens", 0) or 0,
            cache_read_tokens=usage.get("cache_read_input_tokens", 0) or 0,
        ),
    )


def _retry_after(exc: Any) -> float:
    """The provider's retry hint in seconds (``retry-after-ms`` first, as the SDK reads it)."""
    try:
        headers = exc.response.headers
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        return max(0.0, float(headers.get("retry-after", "2")))
    except (AttributeError, ValueError):
        return 2.0


def _has_hint(exc: Any) -> bool:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    return bool(headers.get("retry-after-ms") or headers.get("retry-after"))


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("error", {}).get("message", ""))[:200]
    return str(exc)[:200]
