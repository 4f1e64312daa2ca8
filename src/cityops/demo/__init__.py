"""Synthetic demo data. `cityops seed` runs one generator per package, in dependency order.

Every generator is deterministic for a given seed and writes through the package's own service
functions, so demo data takes the same code paths as real data. Everything it makes is labelled
synthetic.
"""
