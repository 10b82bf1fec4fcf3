"""iDetex upload validation service: domain, adapters and the gRPC entrypoint."""
