"""The wire format: Server-Sent Events, JSON chunks and their deltas, and the merge rule.

Pure code: bytes or text in, `Message` values out; no I/O, threads or Rx.
"""
