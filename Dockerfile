# One image for every role: `docker run IMAGE worker|beat|webhook|flower|...`.
# Build: docker build -t gitops-tasks .
FROM python:3.11-slim AS build
# Compilers only here: dependencies without a wheel for this platform (jsonnet) build in this
# stage; the final image gets the wheels and no toolchain.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitops_tasks gitops_tasks
COPY scheduler scheduler
COPY workers workers
COPY kubesim kubesim
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# git for the mirrors; ssh for ssh:// repositories; tini reaps git's children and forwards
# SIGTERM to the entry point (a worker's warm shutdown).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client tini ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --home-dir /home/gitops --create-home gitops \
    && mkdir -p /var/cache/gitops-tasks && chown gitops:gitops /var/cache/gitops-tasks
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001:10001
ENV GITOPS_TASKS_GIT_CACHE_DIR=/var/cache/gitops-tasks \
    GITOPS_TASKS_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["tini", "--", "gitops-tasks"]
CMD ["--help"]
