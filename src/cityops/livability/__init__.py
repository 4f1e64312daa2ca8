"""Livability: the 15-minute living circle (一刻钟生活圈): walking networks, facilities, accessibility and
coverage."""
