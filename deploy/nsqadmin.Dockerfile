# nsqadmin from github.com/nsqio/nsq (the version go.mod pins), FROM scratch.
# `make nsq-images` builds the static binary on the host and passes a context
# directory holding exactly `nsqadmin`.
FROM scratch

ARG VERSION=unknown
LABEL org.opencontainers.image.title="nsqadmin" \
      org.opencontainers.image.source="https://github.com/nsqio/nsq" \
      org.opencontainers.image.version="${VERSION}"

COPY nsqadmin /usr/local/bin/

USER 65534:65534
EXPOSE 4171

ENTRYPOINT ["/usr/local/bin/nsqadmin", "--http-address=0.0.0.0:4171"]
