"""An address's divisions from the names in it (the register's addresses have no coordinates)."""

from __future__ import annotations

from cityops.core.db import Database
from cityops.places import service
from cityops.places.addresses import match_address


def test_the_deepest_division_named_in_an_address(db: Database) -> None:
    with db.sessions() as session:
        index = service.build_index(session)
    village = match_address(index, "河南省鹤壁市淇滨区金山街道下庞村6号")
    assert village is not None and village.village_code == "410611001203" and village.county_code == "410611"
    assert village.township_code == "410611001" and village.division_code == "410611001203"
    assert village.grid_code == "410611001203001"  # the village has one grid
    # The longest name wins: 下庞村 is not 庞村.
    other = match_address(index, "淇滨区金山街道庞村12号")
    assert other is not None and other.village_code == "410611001202"
    township = match_address(index, "浚县善堂镇人民路8号")
    assert township is not None and township.division_code == "410621101" and township.village_code is None
    county = match_address(index, "鹤壁市淇县朝歌路1号")
    assert county is not None and county.division_code == "410622"
    # A village found without its township, its name being unique in the county.
    alone = match_address(index, "淇滨区冷泉村")
    assert alone is not None and alone.township_code == "410611001" and alone.grid_code is None
    assert match_address(index, "上海市黄浦区中山东一路1号") is None
    assert match_address(index, "") is None
