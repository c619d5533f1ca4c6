# One image for every Natter component: `natter auth|website|chat|frontend|migrate|operator`.
# Build: docker build -t ghcr.io/natter-chat/natter:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile dist --locked --package natter \
    && cp target/dist/natter /natter

# glibc, CA certificates and a non-root user (uid 65532), no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /natter /usr/local/bin/natter
USER 65532:65532
EXPOSE 8080 50051
ENTRYPOINT ["/usr/local/bin/natter"]
CMD ["standalone"]
