# stream-al: the daemon and its tools. `docker compose up` builds it (docker-compose.yml).
# Base pinned to an exact Python patch release and Debian release, so a rebuild is the same
# image until someone bumps it on purpose.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A system user without a shell; the state directory is its own and private (checkpoints 0600).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/stream-al \
        --shell /usr/sbin/nologin stream-al \
    && install -d -m 0700 -o stream-al -g stream-al /var/lib/stream-al

WORKDIR /opt/stream-al
COPY pyproject.toml README.md ./
COPY stream_al ./stream_al
COPY consumers ./consumers
# Both Kafka clients come with the package (confluent-kafka the default).
RUN pip install . && rm -rf /opt/stream-al/build

# Run from the state directory, not the source tree, so nothing imports the copied sources.
WORKDIR /var/lib/stream-al
USER stream-al
# No *_created twin of every counter: it doubles the series and no panel or alert reads it.
# Metrics and health listen on every interface of the container: Prometheus scrapes it
# from another one (outside a container the default is 127.0.0.1).
# A fixed glibc mmap threshold: buffers over 128 KiB (a catch-up after a broker outage
# allocates many) are mapped and given back when freed, not kept in a fragmented heap; the
# daemon's RSS grew 10 MB less over 5 outages in the soak (docs/benchmarks.md, "Soak").
ENV STREAM_AL_STATE_DIR=/var/lib/stream-al \
    STREAM_AL_HTTP__HOST=0.0.0.0 \
    STREAM_AL_HTTP__PORT=9108 \
    PROMETHEUS_DISABLE_CREATED_SERIES=true \
    MALLOC_MMAP_THRESHOLD_=131072 \
    MALLOC_TRIM_THRESHOLD_=131072
VOLUME ["/var/lib/stream-al"]
EXPOSE 9108

ENTRYPOINT ["stream-al"]
CMD ["run"]
