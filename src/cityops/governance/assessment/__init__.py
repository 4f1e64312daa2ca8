"""Risk assessment of major projects and decisions (一评, 社会稳定风险评估)."""
