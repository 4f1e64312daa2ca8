"""Risk register: risks found in case patterns, worked through searchlight (探照灯), excavator (挖掘机)
and road roller (压路机)."""
