"""Headless-Chromium tests of the voting and publication pages."""
