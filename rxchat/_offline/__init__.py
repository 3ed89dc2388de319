"""TODO _offline"""
