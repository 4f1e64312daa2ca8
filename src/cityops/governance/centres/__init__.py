"""Governance centres (综治中心) at four levels: duty rosters and each village's
一村一警一法律顾问一民调组织."""
