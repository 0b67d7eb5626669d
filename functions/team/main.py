"""The generic team function: serves the one team named by ``MULTIAGENT_TEAM``.

Entry points (built on first access): ``app`` (ASGI), ``handler`` (Lambda) and
``team`` (functions-framework: ``functions-framework --asgi --target team``).
"""

from shared.entrypoints import module_getattr

__getattr__ = module_getattr("team", target="team")
