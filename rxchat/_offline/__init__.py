"""The offline model and the loopback server that plays it and scripted replies.

Served by ``rxchat serve``, by `rxchat.offline_client()` in-process, and by `rxchat.testing`.
"""
