"""Places: administrative divisions, grids, point lookup and boundary import."""
