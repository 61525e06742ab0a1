"""The WebSocket hub, sans I/O: sessions, subscriptions, batching, sequencing and
the slow-consumer policy. Adapters feed it text and time and write what it hands out."""
