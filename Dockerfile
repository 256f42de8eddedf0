# syntax=docker/dockerfile:1
# Build: docker build -t partyline .
# Run:   docker run -p 8080:8080 -p 9090:9090 -p 7882:7882/udp -p 7882:7882/tcp \
#          -e PARTYLINE_JWT_SECRET=... -e PARTYLINE_VOICE_PUBLIC_IP=<host IP> partyline
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/partyline ./cmd/partyline && \
    mkdir -p /out/data

# The runtime carries ffprobe and ffmpeg, so that uploaded clips are
# probed (duration, resolution) and get a thumbnail. For an image without
# them (clips then become ready unprocessed), use
# gcr.io/distroless/static-debian12:nonroot here instead.
FROM debian:bookworm-slim
RUN apt-get update && \
    apt-get install -y --no-install-recommends ffmpeg ca-certificates && \
    rm -rf /var/lib/apt/lists/* && \
    groupadd --system --gid 65532 partyline && \
    useradd --system --uid 65532 --gid 65532 --no-create-home partyline
COPY --from=build /out/partyline /partyline
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# Listen beyond loopback inside the container; a JWT key must then be set
# (PARTYLINE_JWT_SECRET or PARTYLINE_JWT_PUBLIC_KEY), or the server refuses to start.
ENV PARTYLINE_ADDR=0.0.0.0:8080 \
    PARTYLINE_ADMIN_ADDR=0.0.0.0:9090 \
    PARTYLINE_VOICE_UDP_ADDR=0.0.0.0:7882 \
    PARTYLINE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080 9090 7882/udp 7882/tcp
ENTRYPOINT ["/partyline"]
CMD ["serve"]
