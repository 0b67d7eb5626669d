"""Gateway → team hops in the cloud: platform identity and non-HTTP transports.

:class:`~shared.routing.TeamRouter` sends a call to the URL ``MULTIAGENT_TEAM_URLS`` gives
for the team and asks the runtime's ``extensions`` for two optional pieces::

    identity_headers  async (url) -> {header: value}     the platform identity of the hop
    team_transport    async (method, url, headers, body) -> (status, headers, body)
                                                          for URLs that are not http(s)

:func:`install` (a route factory registered by ``shared.extensions``, so it runs once per
app) fills them in from the settings:

- ``MULTIAGENT_TEAM_AUTH=google-id-token`` (Cloud Run): a Google ID token for the team's
  service URL from the metadata server, in ``X-Serverless-Authorization`` (so it never
  collides with an ``Authorization`` header). Cloud Run checks the token and that the
  gateway's service account holds ``run.invoker`` on the team service before the request
  arrives; teams are not invokable by anyone else. With this setting a hop is never sent
  without the token (:meth:`~shared.routing.TeamRouter.identity_headers` refuses).
- ``lambda://FUNCTION`` team URLs (Lambda): a synchronous Lambda ``Invoke`` carrying a
  Function URL (payload 2.0) event, allowed by the gateway role's ``lambda:InvokeFunction``
  on exactly the team functions; team functions have no URL at all.

The platform identity says the request came from the gateway; it does not say for whom.
A team-to-team hop (``consult_team``, a run's step) carries no client key at all: the team
authenticates its single-use hop credential (``X-Multiagent-Envelope``, bound to the team,
operation and body, see :mod:`shared.envelope`) and claims it once. A client's own call
relayed by the gateway is authenticated by the team function as the client's request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.runtime import Runtime


def install(runtime: Runtime, serve_mode: bool = False) -> list[Any]:
    """Register the hop pieces the settings ask for on ``runtime``; adds no route."""
    settings = runtime.settings
    if settings.team_auth == "google-id-token" and "identity_headers" not in runtime.extensions:
        from shared.hops.gcp import GoogleIdTokens

        runtime.extensions["identity_headers"] = GoogleIdTokens()
    lambda_urls = any(url.startswith("lambda://") for url in settings.team_urls.values())
    if lambda_urls and "team_transport" not in runtime.extensions:
        from shared.hops.aws import LambdaInvoker

        runtime.extensions["team_transport"] = LambdaInvoker(timeout_s=settings.operation_deadline_s + 15)
    return []
