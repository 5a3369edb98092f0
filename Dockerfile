# The ajc-gitops scheduler: a drop-in for `ajc task cron scheduler` that runs as a replicated,
# leader-electing Deployment (deploy/kubernetes/). Build: docker build -t ajc-gitops .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas schemas
COPY ajc_gitops ajc_gitops
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ajc
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# NATS CLI context files are read from $XDG_CONFIG_HOME/nats/context/<NATS_CONTEXT>.json;
# the Kubernetes manifests mount a Secret there.
ENV XDG_CONFIG_HOME=/etc/ajc-gitops \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["ajc-gitops", "scheduler", "--monitor", "8080", "--log-format", "json"]
