"""Clients of the national services (one module each), behind small Protocols with typed errors.

Shared plumbing: :mod:`lgo.national.transport` (timeouts, retries, trace line) and
:mod:`lgo.national.errors` (the typed errors a counter shows).
"""
