"""gRPC entrypoint: the v1 ValidationService servicer, error mapping, auth and server assembly.

Generated stubs live in service.api.gen (built by `make proto`, not committed).
"""
