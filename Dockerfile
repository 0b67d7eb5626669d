# One image for every Cloud Run function: MULTIAGENT_TEAM=<team> serves that team, unset
# serves the gateway. Only the runtime dependencies and the gcp extra are installed, at the
# versions of requirements/gcp.txt (exact, hash-checked; scripts/lock.sh makes it under the
# versions the tests ran): no functions-framework, no MCP stack, no AWS SDK.
#   docker build -t multiagent .            (scripts/build.sh image)
#   docker run -e PORT=8080 -p 8080:8080 multiagent
# The entry command is tested without Docker by tests/integration/test_container_entry.py,
# which runs the CMD below with the ENV below.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/gcp.txt requirements/gcp.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-compile --no-deps --require-hashes -r requirements/gcp.txt
COPY pyproject.toml README.md ./
COPY shared/ shared/
COPY functions/ functions/
RUN /opt/venv/bin/pip install --no-compile --no-deps ".[gcp]" \
    && /opt/venv/bin/pip check \
    && find /opt/venv -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} + \
    && /opt/venv/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app --no-create-home app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8080
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=4)"]
CMD ["python", "-m", "functions.container"]
