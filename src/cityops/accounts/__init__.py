"""Accounts: users, org units, sign-in, API tokens and the audit pages (kernel: cityops.core.auth)."""
