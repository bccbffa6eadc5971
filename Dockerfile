# One image for both programs of agent-tracker:
#   tracker      the REST service (the default command)
#   tracker-mcp  the MCP bridge (docker-compose.yml runs it in streamable HTTP mode)
# Build: docker build -t agent-tracker .   (docker-compose.yml builds it for you)

# Both stages must use the same Python: the venv copied from the builder links to its interpreter.
ARG PYTHON_IMAGE=python:3.12-slim-trixie

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest of the tree out of the context too).
COPY pyproject.toml README.md ./
COPY tracker_service ./tracker_service
COPY mcp_tools ./mcp_tools

# Build the project's wheel, then install it with both programs' dependencies into a venv
# that the runtime stage copies whole: no pip, cache or source tree in the final image.
# DL3013 (pin versions in pip) does not fit: what is installed is the wheel just built from this
# tree, and its dependencies are bounded by pyproject.toml, which has no lock file to pin them to.
# hadolint ignore=DL3013
RUN pip wheel --no-deps --wheel-dir /dist . \
    && python -m venv --without-pip /opt/venv \
    && wheel="$(echo /dist/agent_tracker-*.whl)" \
    && pip --python /opt/venv/bin/python install "${wheel}[all,backup]"


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="agent-tracker" \
      org.opencontainers.image.description="Shared tasks, handoffs and sequential IDs for AI coding agents: the tracker REST service and its MCP bridge." \
      org.opencontainers.image.licenses="MIT"

# A fixed non-root uid/gid, so volume ownership is predictable. /data holds admin.key: a named
# volume mounted there starts out with this owner and mode.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/tracker \
        --shell /usr/sbin/nologin tracker \
    && install -d -o tracker -g tracker -m 0700 /data

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRACKER_DATA_DIR=/data

USER 10001:10001
WORKDIR /home/tracker

# 8080: tracker serve; 8766: tracker-mcp --transport streamable-http.
EXPOSE 8080 8766

# slim has no curl: ask /health with the standard library. Any exception (refused, timeout, the
# 503 that /health answers when the database is down) exits 1, which Docker counts as unhealthy.
# A container running the bridge points HEALTHCHECK_URL at its own port.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('HEALTHCHECK_URL', 'http://127.0.0.1:8080/health'), timeout=4)"]

CMD ["tracker", "serve", "--host", "0.0.0.0", "--port", "8080"]
