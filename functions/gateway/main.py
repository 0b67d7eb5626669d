"""The gateway function: every team behind one URL.

Entry points (built on first access): ``app`` (ASGI), ``handler`` (Lambda) and
``gateway`` (functions-framework: ``functions-framework --asgi --target gateway``).
Teams run in-process unless ``MULTIAGENT_TEAM_URLS`` maps them to their own functions.
"""

from shared.entrypoints import module_getattr

__getattr__ = module_getattr("gateway", target="gateway")
