"""Loopback fakes of the two Google endpoints a Cloud Run function talks to for identity
and secrets: the metadata server and the Secret Manager REST API (v1), on one port.

google-auth and google-cloud-secret-manager are pointed at it the way they are configured
anyway: ``GCE_METADATA_HOST`` / ``GCE_METADATA_IP`` (google-auth reads them when its
metadata module is imported, so set them before the first import, e.g. in a subprocess)
and the client's ``api_endpoint`` (``MULTIAGENT_SECRETS_ENDPOINT=http://127.0.0.1:PORT``).
Nothing in the libraries or in our code is patched.

Metadata: ``/`` (the ping, answering ``Metadata-Flavor: Google``), ``project/project-id``,
``project/numeric-project-id``, ``instance/service-accounts/default/`` (``?recursive=true``),
``.../email``, ``.../token`` (an access token), ``.../identity?audience=A`` (a JWT whose
``aud`` is A, signed by nobody: the callee here is a fake as well), and
``universe/universe-domain``. Requests without ``Metadata-Flavor: Google`` get 403, like
the real server.

Secret Manager: ``GET /v1/projects/P/secrets/S/versions/V:access`` for V ``latest`` or a
number; a request whose bearer token is not the one the metadata server handed out is
refused 401 (so a client that sends no credentials fails as it would in the cloud).
Secrets are set with :meth:`FakeGcp.set_secret`, or from another process with
``POST /_fake/secrets/ID`` (body: the new version's value); every request is logged.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PROJECT = "fake-project"
PROJECT_NUMBER = "123456789012"
SERVICE_ACCOUNT = "gateway@fake-project.iam.gserviceaccount.com"
ACCESS_TOKEN = "ya29.fake-access-token"
_ACCESS = re.compile(r"^/v1/projects/([^/]+)/secrets/([^/]+)/versions/([^/:]+):access$")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def id_token(audience: str, email: str = SERVICE_ACCOUNT, lifetime_s: int = 3600) -> str:
    """An unsigned JWT shaped like the metadata server's identity tokens."""
    now = int(time.time())
    header = {"alg": "RS256", "kid": "fake", "typ": "JWT"}
    claims = {"aud": audience, "azp": email, "email": email, "email_verified": True, "exp": now + lifetime_s,
              "iat": now, "iss": "https://accounts.google.com", "sub": "1234567890"}
    return ".".join([_b64url(json.dumps(header).encode()), _b64url(json.dumps(claims).encode()), _b64url(b"sig")])


def decode_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT (no verification)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


class FakeGcp:
    """Both fakes on one loopback port; use as a context manager."""

    def __init__(self, project: str = PROJECT) -> None:
        self.project = project
        self.secrets: dict[str, list[bytes | None]] = {}  # secret id -> versions (None: disabled)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- control ---------------------------------------------------------------------------
    def set_secret(self, secret_id: str, value: str | None) -> None:
        """Add a version (``None``: create the secret with no version yet)."""
        with self._lock:
            versions = self.secrets.setdefault(secret_id, [])
            if value is not None:
                versions.append(value.encode())

    def disable_latest(self, secret_id: str) -> None:
        """Disable the latest version (``latest`` then fails with FAILED_PRECONDITION)."""
        with self._lock:
            self.secrets[secret_id][-1] = None

    def log(self, path_prefix: str = "") -> list[dict[str, Any]]:
        """Requests seen so far whose path starts with ``path_prefix``."""
        with self._lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point google-auth and our secret store here."""
        host = f"127.0.0.1:{self.port}"
        return {"GCE_METADATA_HOST": host, "GCE_METADATA_IP": host, "MULTIAGENT_SECRETS_ENDPOINT": self.url,
                "GOOGLE_CLOUD_PROJECT": self.project}

    def __enter__(self) -> FakeGcp:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self)

            def do_POST(self) -> None:  # noqa: N802
                if not self.path.startswith("/_fake/secrets/"):
                    return fake._send(self, 404, "not found", "text/plain", {})
                value = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
                fake.set_secret(self.path[len("/_fake/secrets/"):], value)
                fake._send(self, 204, "", "text/plain", {})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- serving ---------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append({"path": parts.path, "query": query, "headers": dict(h.headers.items())})
        if parts.path.startswith("/v1/"):
            status, body, ctype = self._secret_manager(parts.path, h.headers.get("authorization", ""))
            return self._send(h, status, body, ctype, {})
        if h.headers.get("metadata-flavor") != "Google":
            return self._send(h, 403, "missing Metadata-Flavor: Google", "text/plain", {})
        status, body, ctype = self._metadata(parts.path, query)
        self._send(h, status, body, ctype, {"Metadata-Flavor": "Google"})

    def _metadata(self, path: str, query: dict[str, str]) -> tuple[int, str, str]:
        base = "/computeMetadata/v1/"
        if path in ("", "/"):
            return 200, "", "text/plain"
        if not path.startswith(base):
            return 404, "not found", "text/plain"
        key = path[len(base):]
        account = "instance/service-accounts/default/"
        if key == "project/project-id":
            return 200, self.project, "text/plain"
        if key == "project/numeric-project-id":
            return 200, PROJECT_NUMBER, "text/plain"
        if key == "universe/universe-domain":
            return 200, "googleapis.com", "text/plain"
        if key in (account, account.rstrip("/")):
            info = {"aliases": ["default"], "email": SERVICE_ACCOUNT,
                    "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
            return 200, json.dumps(info), "application/json"
        if key == account + "email":
            return 200, SERVICE_ACCOUNT, "text/plain"
        if key == account + "token":
            body = {"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}
            return 200, json.dumps(body), "application/json"
        if key == account + "identity":
            if not query.get("audience"):
                return 400, "audience required", "text/plain"
            return 200, id_token(query["audience"]), "text/plain"
        return 404, "not found", "text/plain"

    def _secret_manager(self, path: str, authorization: str) -> tuple[int, str, str]:
        def error(code: int, status: str, message: str) -> tuple[int, str, str]:
            return code, json.dumps({"error": {"code": code, "message": message, "status": status}}), "application/json"

        if authorization != f"Bearer {ACCESS_TOKEN}":
            return error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        match = _ACCESS.match(path)
        if not match:
            return error(404, "NOT_FOUND", f"unknown method {path}")
        project, secret_id, version = match.groups()
        if project not in (self.project, PROJECT_NUMBER):
            return error(403, "PERMISSION_DENIED", f"no access to project {project}")
        with self._lock:
            versions = self.secrets.get(secret_id)
        if versions is None:
            return error(404, "NOT_FOUND", f"Secret [projects/{PROJECT_NUMBER}/secrets/{secret_id}] not found.")
        if not versions:
            return error(404, "NOT_FOUND", f"Secret Version [{secret_id}/versions/{version}] not found.")
        number = len(versions) if version == "latest" else int(version)
        data = versions[number - 1] if 0 < number <= len(versions) else None
        if data is None:
            return error(400, "FAILED_PRECONDITION", f"Secret Version [{secret_id}/{number}] is in DISABLED state.")
        body = {"name": f"projects/{PROJECT_NUMBER}/secrets/{secret_id}/versions/{number}",
                "payload": {"data": base64.b64encode(data).decode()}}
        return 200, json.dumps(body), "application/json"

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: str, ctype: str, headers: dict[str, str]) -> None:
        raw = body.encode()
        h.send_response(status)
        h.send_header("content-type", ctype)
        h.send_header("content-length", str(len(raw)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(raw)
