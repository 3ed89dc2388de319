"""TODO _tools"""
