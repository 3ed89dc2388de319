"""TODO _concurrency"""
