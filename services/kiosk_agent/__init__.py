"""The kiosk agent: runs on the kiosk, votes offline, uploads signed hash-chained batches."""
