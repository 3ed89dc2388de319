"""HTTP: sending one streamed request and reading its body, with requests and urllib3.

Connections, TLS, proxies, aborts from any thread, retries, and HTTP errors as typed errors.
"""
