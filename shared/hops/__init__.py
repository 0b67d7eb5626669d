"""Gateway → team hops in the cloud: platform identity and non-HTTP transports.

:class:`~shared.remote.RemoteTeams` sends a call to the URL ``MULTIAGENT_TEAM_URLS`` gives
for the team, with two optional pieces::

    identity_headers  async (url) -> {header: value}     the platform identity of the hop
    team_transport    async (method, url, headers, body) -> (status, headers, body)
                                                          for URLs that are not http(s)

:func:`platform_hops` picks them from the settings (once per instance, when the runtime
first reaches another team):

- ``MULTIAGENT_TEAM_AUTH=google-id-token`` (Cloud Run): a Google ID token for the team's
  service URL from the metadata server, in ``X-Serverless-Authorization`` (so it never
  collides with an ``Authorization`` header). Cloud Run checks the token and that the
  gateway's service account holds ``run.invoker`` on the team service before the request
  arrives; teams are not invokable by anyone else. With this setting a hop is never sent
  without the token (:meth:`~shared.remote.RemoteTeams.identity_headers` refuses).
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
    from shared.config import Settings


def platform_hops(settings: Settings) -> tuple[Any, Any]:
    """``(identity_headers, team_transport)`` the settings ask for (None where not)."""
    identity: Any = None
    transport: Any = None
    if settings.team_auth == "google-id-token":
        from shared.hops.gcp import GoogleIdTokens

        identity = GoogleIdTokens()
    if any(url.startswith("lambda://") for url in settings.team_urls.values()):
        from shared.hops.aws import LambdaInvoker

        transport = LambdaInvoker(timeout_s=settings.operation_deadline_s + 15)
    return identity, transport
