"""Where an address lies, from the division names it contains (no geocoding service: the platform
runs on an intranet).

A Chinese address names its divisions from the top: 河南省鹤壁市淇滨区金山街道XX社区XX路12号. The
matcher finds the county, then a township of that county, then a village of that township (by its
everyday name: 东马庄村民委员会 is written 东马庄村), each only under the one above when that was
found; a village is also found without its township when its name is unique in the county (or the
city). The answer is the deepest division found, and the grid when that village has only one."""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from dataclasses import dataclass

from cityops.places.index import PlaceIndex
from cityops.places.synthetic import short_village_name


@dataclass(frozen=True)
class AddressMatch:
    division_code: str  # the deepest division named: county (6), township (9) or village (12 digits)
    county_code: str
    township_code: str | None = None
    village_code: str | None = None
    grid_code: str | None = None  # when the village has a single grid


def _names(full: str) -> tuple[str, ...]:
    """A division's name as written in addresses: itself, and its everyday form for villages."""
    short = short_village_name(full)
    return (full,) if short == full else (full, short)


class AddressMatcher:
    def __init__(self, index: PlaceIndex) -> None:
        parent: dict[str, str] = {}
        grids: dict[str, list[str]] = defaultdict(list)
        for leaf in index.leaves:
            if leaf.village_code and leaf.township_code:
                parent[leaf.village_code] = leaf.township_code
            if leaf.township_code and leaf.county_code:
                parent[leaf.township_code] = leaf.county_code
            if leaf.village_code and leaf.grid_code:
                grids[leaf.village_code].append(leaf.grid_code)
        self.parent = parent
        self.single_grid = {v: g[0] for v, g in grids.items() if len(g) == 1}
        self.counties = sorted({c for c in parent.values() if c not in parent})
        self.children: dict[str, list[str]] = defaultdict(list)
        for child, above in parent.items():
            self.children[above].append(child)
        self.names = {code: _names(index.names.get(code, "")) for code in (*parent, *self.counties)}

    def _found(self, text: str, codes: list[str]) -> str | None:
        """The code whose name stands in the text (the longest name wins; None if none or a tie)."""
        best: tuple[int, str] | None = None
        tie = False
        for code in codes:
            length = max((len(n) for n in self.names.get(code, ()) if n and n in text), default=0)
            if length and (best is None or length > best[0]):
                best, tie = (length, code), False
            elif length and best is not None and length == best[0] and code != best[1]:
                tie = True
        return None if best is None or tie else best[1]

    def match(self, address: str) -> AddressMatch | None:
        text = address.replace(" ", "")
        if not text:
            return None
        county = self._found(text, self.counties)
        townships = (
            self.children.get(county, [])
            if county
            else [t for c in self.counties for t in self.children.get(c, [])]
        )
        township = self._found(text, townships)
        if township:
            villages = self.children.get(township, [])
        else:
            villages = [v for t in townships for v in self.children.get(t, [])]
        village = self._found(text, villages)
        if village:
            township = township or self.parent[village]
        if township:
            county = county or self.parent[township]
        if county is None:
            return None
        return AddressMatch(
            division_code=village or township or county,
            county_code=county,
            township_code=township,
            village_code=village,
            grid_code=self.single_grid.get(village) if village else None,
        )


_matchers: weakref.WeakKeyDictionary[PlaceIndex, AddressMatcher] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def matcher_for(index: PlaceIndex) -> AddressMatcher:
    """The matcher over an index's divisions, built once per index."""
    with _lock:
        found = _matchers.get(index)
        if found is None:
            found = _matchers[index] = AddressMatcher(index)
        return found


def match_address(index: PlaceIndex, address: str) -> AddressMatch | None:
    """The divisions an address names (see the module's docstring); None when it names no county,
    township or village of the city."""
    return matcher_for(index).match(address)
