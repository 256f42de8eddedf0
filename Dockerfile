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

# Static ffprobe and ffmpeg, so that uploaded clips are probed (duration,
# resolution) and get a thumbnail. Without them clips become ready
# unprocessed; drop this stage and its COPY for a smaller image.
FROM mwader/static-ffmpeg:7.1 AS ffmpeg

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=ffmpeg /ffmpeg /ffprobe /usr/local/bin/
COPY --from=build /out/partyline /partyline
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot:nonroot
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
