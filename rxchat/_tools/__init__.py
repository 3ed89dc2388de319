"""Tools the model may call: `Tool` and `@tool`, their JSON Schema, and running one call.

The session's actor decides when a call runs; `run` runs it off the session's thread.
"""
