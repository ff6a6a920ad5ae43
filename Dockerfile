# The votestream image: one image, three services. Kubernetes runs
# `votestream ingest|tally|publish` (deploy/k8s); `docker run IMAGE up` runs everything
# on the embedded broker and database, for a demo only.
#   docker build -t votestream:0.1.0 .

# Build wheels in a throw-away stage, so compilers never reach the runtime image.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
COPY services ./services
COPY schemas ./schemas
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VOTESTREAM_DATA_DIR=/var/lib/votestream/data \
    VOTESTREAM_PUBLISH_DIR=/var/lib/votestream/publish
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels votestream \
    && rm -rf /wheels
# The same uid/gid as the pods' securityContext (runAsUser 10001).
RUN groupadd --system --gid 10001 votestream \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/votestream \
       --no-create-home --shell /usr/sbin/nologin votestream \
    && mkdir -p /var/lib/votestream/data /var/lib/votestream/publish \
    && chown -R 10001:10001 /var/lib/votestream
USER 10001:10001
WORKDIR /var/lib/votestream
EXPOSE 8080 8081 8082
ENTRYPOINT ["votestream"]
CMD ["up"]
