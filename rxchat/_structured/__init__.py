"""Structured output: JSON replies parsed as they grow, checked against a schema."""
