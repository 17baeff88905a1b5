"""Servers and fixtures shared by test suites."""
