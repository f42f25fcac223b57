# The one binary, built in a Rust image and run in a distroless one as a non-root user.
#   docker build -t kairos .
#   docker run -p 7700:7700 -v kairos-data:/var/lib/kairos kairos
# The same image runs the control plane (the default command) and the runtimes
# (`kairos runtime ...`); deploy/kubernetes/ runs a control plane and a group of runtimes.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kairos-cli \
    && strip target/release/kairos \
    && mkdir -p /out/var/lib/kairos \
    && cp target/release/kairos /out/kairos

# glibc and libgcc only, no shell; uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/kairos /usr/local/bin/kairos
COPY --from=build --chown=65532:65532 /out/var/lib/kairos /var/lib/kairos
WORKDIR /var/lib/kairos
USER 65532:65532
EXPOSE 7700 7701
ENTRYPOINT ["/usr/local/bin/kairos"]
CMD ["control", "--listen", "0.0.0.0:7700", "--database", "sqlite:///var/lib/kairos/kairos.db"]
