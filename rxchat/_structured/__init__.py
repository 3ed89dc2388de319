"""Structured output: a reply asked for as JSON, parsed as it grows and checked against
a schema part by part.

`parser` (the incremental JSON parser) → `validate` (checks of each completed part) →
`schema` (what is asked for: ``response_format``, strict mode, building the value) →
`operators` (the Rx face, exported by `rxchat.operators`); `instance` makes a fitting
value for the offline model.
"""
