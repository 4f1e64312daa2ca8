"""Natural-disaster warnings: the four Chinese warning levels, their lifecycle and OASIS CAP 1.2."""
