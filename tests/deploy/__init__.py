"""Offline validation of the operations artifacts in deploy/."""
