"""TODO _wire"""
