"""Reference BlobService and JobService: small, real HTTP servers built on the standard library.

They stand in for the production downstream services in development and in end-to-end tests,
and expose a ``/_control`` plane that lets tests inject faults and read request statistics.
"""
