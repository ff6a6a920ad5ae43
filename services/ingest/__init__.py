"""Ingest: the channel adapters (web, WeChat, kiosk) that put ballots on Kafka."""
