"""Open311 GeoReport v2 facade over the case engine (public case types become Open311 services)."""
