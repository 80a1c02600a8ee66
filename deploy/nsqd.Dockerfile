# nsqd from github.com/nsqio/nsq (the version go.mod pins), FROM scratch.
# `make nsq-images` builds the static binary on the host and passes a context
# directory holding exactly `nsqd` and `data/` (an empty directory).
FROM scratch

ARG VERSION=unknown
LABEL org.opencontainers.image.title="nsqd" \
      org.opencontainers.image.source="https://github.com/nsqio/nsq" \
      org.opencontainers.image.version="${VERSION}"

COPY nsqd /usr/local/bin/
COPY --chown=65534:65534 data /data

USER 65534:65534
VOLUME /data
EXPOSE 4150 4151

# Same path as in the official nsqio/nsq image, so deploy/docker-compose.yml
# can name the entrypoint and run either image.
ENTRYPOINT ["/usr/local/bin/nsqd", "--data-path=/data"]
