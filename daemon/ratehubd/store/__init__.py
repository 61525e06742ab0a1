"""Persistence: SQLModel tables and the repository the runtime writes through."""
