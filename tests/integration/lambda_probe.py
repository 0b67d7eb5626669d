"""Imports a Lambda ``handler`` from an unpacked zip and invokes it with events, in a
process that can import nothing else (run it as ``python -S lambda_probe.py ...``).

``python -S tests/integration/lambda_probe.py ROOT MODULE EVENTS.json`` prints one JSON
object: the cold import-and-build time of ``MODULE.handler``, each event's response, and
any imported module whose file lies outside ROOT and the standard library (there must be
none: the zip is self-contained).
"""

from __future__ import annotations

import importlib
import json
import sys
import sysconfig
import time


def main() -> None:
    root, module_name, events_file = sys.argv[1:4]
    sys.path[:1] = [root]  # the zip instead of this script's folder
    started = time.perf_counter()
    module = importlib.import_module(module_name)
    handler = module.handler
    cold_s = time.perf_counter() - started
    responses = []
    for event in json.load(open(events_file)):
        t = time.perf_counter()
        response = handler(event, None)
        responses.append({**response, "ms": round((time.perf_counter() - t) * 1000, 1)})
    stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
    foreign = sorted(
        name for name, m in list(sys.modules.items())
        if name not in ("__main__", "__mp_main__") and getattr(m, "__file__", None)
        and not m.__file__.startswith((root, *stdlib))
    )
    print(json.dumps({"cold_s": cold_s, "responses": responses, "foreign_modules": foreign,
                      "handler_file": module.__file__}), flush=True)


if __name__ == "__main__":
    main()
