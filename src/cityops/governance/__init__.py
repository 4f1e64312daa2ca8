"""Social governance: police transfers (警网融合) and, later, centres, disputes, meetings and risks."""
