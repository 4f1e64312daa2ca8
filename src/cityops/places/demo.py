"""Places generator for `cityops seed`: Hebi's real divisions with synthetic geometry and grids.

The divisions are real and fixed, so scale small and full produce the same places."""

from __future__ import annotations

from cityops.core.db import Database
from cityops.core.seeding import Generator, SeedContext
from cityops.places import service


def run(ctx: SeedContext) -> None:
    advance = ctx.task("places: divisions, synthetic boundaries and grids", total=service.seed_steps())
    # One integer per seed: numpy's generator takes an int, the context hands out random.Random.
    seed = ctx.rng("places").getrandbits(63)
    with ctx.db.session() as session:
        service.seed_places(session, seed=seed, advance=advance)


def is_seeded(db: Database) -> bool:
    with db.sessions() as session:
        return service.is_seeded(session)


GENERATOR = Generator(name="places", run=run, is_seeded=is_seeded)
