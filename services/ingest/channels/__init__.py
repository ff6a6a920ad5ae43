"""One module per channel; each registers its routes on the ingest app."""
