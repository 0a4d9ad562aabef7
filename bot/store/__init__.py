"""Persistence: raw parameterised SQL over aiosqlite, numbered migrations."""
