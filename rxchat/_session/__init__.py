"""TODO _session"""
