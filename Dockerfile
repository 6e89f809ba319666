# One image for every role: `docker run IMAGE worker|beat|webhook|flower|...`.
# Build: docker build -t gitops-tasks .   (--build-arg PYTHON_IMAGE=... for a mirrored base)
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS build
# Compilers only here: dependencies without a wheel for this platform (jsonnet) build in this
# stage; the final image gets the installed virtualenv and no toolchain.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/gitops-tasks
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gitops_tasks gitops_tasks
COPY scheduler scheduler
COPY workers workers
COPY kubesim kubesim
# helm-python-sdk's wheel holds its 85 MB library three times (wheels cannot carry symlinks):
# keep one copy and link the other names to it.
RUN /opt/gitops-tasks/bin/pip install --no-cache-dir . \
    && for lib in /opt/gitops-tasks/lib/python3*/site-packages/helm_python/lib; do \
         cd "$lib" && real=$(ls libhelm_c.so.*.*.* | head -n 1) && for name in libhelm_c.so*; do \
           [ "$name" != "$real" ] && cmp -s "$name" "$real" && ln -sf "$real" "$name"; \
         done; true; \
       done

FROM ${PYTHON_IMAGE}
# git for the mirrors; ssh for ssh:// repositories; tini reaps git's children and forwards
# SIGTERM to the entry point (a worker's warm shutdown).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client tini ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group --home-dir /home/gitops --create-home gitops \
    && mkdir -p /var/cache/gitops-tasks && chown gitops:gitops /var/cache/gitops-tasks
# One layer: the virtualenv the build stage installed (same base image, so same interpreter).
COPY --from=build /opt/gitops-tasks /opt/gitops-tasks
USER 10001:10001
ENV PATH=/opt/gitops-tasks/bin:$PATH \
    GITOPS_TASKS_GIT_CACHE_DIR=/var/cache/gitops-tasks \
    GITOPS_TASKS_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["tini", "--", "gitops-tasks"]
CMD ["--help"]
