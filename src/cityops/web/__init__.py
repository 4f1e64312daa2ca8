"""The web shell: shared layout, static assets, translations and the home and map pages."""
