"""Shared kernel: database, errors, events, auth, calendar and geometry helpers. Imports no domain package."""
