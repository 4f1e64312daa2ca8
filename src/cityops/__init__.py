"""cityops: city operations and governance platform."""

__version__ = "0.1.0"
