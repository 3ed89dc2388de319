"""Handing values between threads and event loops: loop hand-off, mailbox, bounded channel.

Nothing here knows about chat: these are the small pieces the session and `aio` share.
"""
