# The function app under the real Azure Functions host, with the "RabbitMQ shim" profile
# (scripts/package --profile rabbitmq): what docker-compose's `functions` service runs.
#
#   docker build -f deploy/functions.Dockerfile -t contoso-orders-functions .
#
# The handler is built on bullseye (glibc 2.31) so that it runs on the Functions host image
# whatever Debian release that image's tag is based on.

ARG RUST_VERSION=1
FROM rust:${RUST_VERSION}-bullseye AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p orders-functions --bin handler \
 && install -D -m 0755 target/release/handler /out/handler \
 && scripts/package --handler /out/handler --profile rabbitmq --out /dist --no-zip

# The .NET in-process host image: the Functions host with no language worker, which is all a
# custom handler needs (FUNCTIONS_WORKER_RUNTIME=custom). It serves HTTP on port 80.
FROM mcr.microsoft.com/azure-functions/dotnet:4
ENV AzureWebJobsScriptRoot=/home/site/wwwroot \
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true \
    FUNCTIONS_WORKER_RUNTIME=custom
COPY --from=build /dist/functionapp-rabbitmq/ /home/site/wwwroot/
EXPOSE 80
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=5 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET /api/health/live HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
