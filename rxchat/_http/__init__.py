"""TODO _http"""
