"""Disputes (矛盾纠纷): parties, mediation sessions, agreement or referral, and where they were resolved."""
