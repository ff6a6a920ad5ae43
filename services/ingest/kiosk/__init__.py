"""The kiosk channel: signed, hash-chained batches from registered offline kiosks."""
