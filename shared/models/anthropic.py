"""Anthropic, Bedrock and Vertex providers: one class over the SDK's three async clients.

The SDK is imported when the provider is built, not when this module is imported; the
gateway builds it in a background thread once it listens, so ``/health`` answers before
the SDK's ~0.9 s import has finished.
"""

from __future__ import annotations

from typing import Any

from shared.errors import ModelError, Timeout, Unavailable
from shared.models.base import ModelRequest, ModelResponse, Usage


class AnthropicProvider:
    """:class:`~shared.models.base.ModelProvider` over ``anthropic.AsyncAnthropic`` and
    its Bedrock and Vertex twins. The client is built once per instance."""

    def __init__(self, name: str = "anthropic", api_key: str | None = None, max_retries: int = 2) -> None:
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

    async def create(self, request: ModelRequest) -> ModelResponse:
        """One Messages API call; SDK errors become problem errors."""
        sdk = self._sdk
        params: dict[str, Any] = {
            "model": request.model,
            "system": request.system,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
        }
        if request.tools:
            params["tools"] = request.tools
        if request.tool_choice:
            params["tool_choice"] = request.tool_choice
        try:
            message = await self.client.messages.create(**params, timeout=request.timeout_s)
        except sdk.APITimeoutError as exc:
            raise Timeout(f"the model provider did not answer within {request.timeout_s:.0f} s") from exc
        except sdk.APIConnectionError as exc:
            raise Unavailable(f"cannot reach the model provider: {exc}", retry_after_s=2) from exc
        except sdk.RateLimitError as exc:
            raise Unavailable(
                "the model provider is rate limiting this deployment", retry_after_s=_retry_after(exc)
            ) from exc
        except sdk.APIStatusError as exc:
            if exc.status_code in (529, 503):
                raise Unavailable("the model provider is overloaded", retry_after_s=_retry_after(exc)) from exc
            if exc.status_code in (401, 403):
                raise ModelError("the model provider rejected this deployment's credentials") from exc
            raise ModelError(f"the model provider answered {exc.status_code}: {_message(exc)}") from exc
        usage = message.usage
        return ModelResponse(
            model=message.model,
            content=[block.model_dump(mode="json", exclude_none=True) for block in message.content],
            stop_reason=message.stop_reason,
            usage=Usage(
                input_tokens=usage.input_tokens or 0,
                output_tokens=usage.output_tokens or 0,
                cache_write_tokens=getattr(usage, "cache_creation_input_tokens", 0) or 0,
                cache_read_tokens=getattr(usage, "cache_read_input_tokens", 0) or 0,
            ),
        )


def _retry_after(exc: Any) -> float:
    try:
        return float(exc.response.headers.get("retry-after", "2"))
    except (AttributeError, ValueError):
        return 2.0


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        return str(body.get("error", {}).get("message", ""))[:200]
    return str(exc)[:200]
