"""A loopback fake of the Lambda ``Invoke`` API that runs a real handler.

``python -S tests/fakes/lambda_invoke.py --root DIR --handler functions.team.main.handler``
imports the handler from DIR (an unpacked Lambda zip: nothing from the repository or a
site-packages is importable under ``-S``) and serves
``POST /2015-03-31/functions/NAME/invocations`` the way Lambda does for a synchronous
invoke: the request body is the event, the response body is what the handler returned,
and a handler exception is ``X-Amz-Function-Error: Unhandled`` with Lambda's error shape.
boto3 reaches it through ``AWS_ENDPOINT_URL_LAMBDA``. Prints ``READY <port>`` once
listening; appends one JSON line per invocation to ``--log``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--handler", required=True, help="module.attribute")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    sys.path[:1] = [args.root]  # the zip, not this script's folder
    module_name, _, attribute = args.handler.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            parts = self.path.split("/")
            if len(parts) != 5 or parts[1] != "2015-03-31" or parts[4] != "invocations":
                return self._send(404, {"Type": "User", "message": "not an Invoke call"}, {})
            event = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
            started = time.perf_counter()
            headers = {"X-Amz-Executed-Version": "$LATEST"}
            try:
                result = handler(event, None)
            except Exception as exc:  # noqa: BLE001 - reported the way Lambda reports it
                result = {"errorMessage": str(exc), "errorType": type(exc).__name__,
                          "stackTrace": traceback.format_tb(exc.__traceback__)}
                headers["X-Amz-Function-Error"] = "Unhandled"
            with open(args.log, "a") as log:
                log.write(json.dumps({"function": parts[3], "path": event.get("rawPath"),
                                      "headers": event.get("headers", {}),
                                      "status": result.get("statusCode"),
                                      "ms": round((time.perf_counter() - started) * 1000, 1)}) + "\n")
            self._send(200, result, headers)

        def _send(self, status: int, body: object, headers: dict[str, str]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

    # one request at a time, on the main thread: how a Lambda instance runs its handler
    server = HTTPServer(("127.0.0.1", args.port), Handler)
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
