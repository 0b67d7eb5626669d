"""Model-provider factory (``MULTIAGENT_MODEL_PROVIDER``)."""

from __future__ import annotations

from shared.models.base import ModelProvider, ModelRequest, ModelResponse, Usage

__all__ = ["ModelProvider", "ModelRequest", "ModelResponse", "Usage", "open_provider"]


def open_provider(name: str, api_key: str | None = None, banner: bool = True) -> ModelProvider:
    """Build the provider ``name`` (anthropic, bedrock, vertex, offline, simulated)."""
    if name == "simulated":
        from shared.models.simulated import SimulatedProvider

        return SimulatedProvider(banner=banner)
    if name == "offline":
        from shared.models.offline import OfflineProvider

        return OfflineProvider(banner=banner)
    from shared.models.anthropic import AnthropicProvider

    return AnthropicProvider(name, api_key=api_key)
