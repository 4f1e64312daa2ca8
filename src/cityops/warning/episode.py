"""A heavy-rain episode for the demo, fed to the monitoring stations through perception's ingestion
path (service.store_uploads), so that their warnings rise from blue to red and come back down to
being lifted, as they would from real readings.

The figures are SYNTHETIC, shaped after the July 2021 Henan rainfall (days of rain building up, a
burst with hourly totals near 100 mm, more than a metre of rain in the worst-hit places of 浚县 and
淇县, the 卫河 and 共产主义渠 cresting a day later): made up for the demo, not the observed records.

The episode's hours are played at `speed` (3600: an hour a second). Its readings are dated on its own
clock, which ends at the moment the episode ends in real time: an hour of the episode covers an hour
of reading time, so the stations' windows (rain in 3 h, rise in 1 h) and hold times mean what they say,
and no reading is ever dated in the future."""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from cityops.core.db import Database
from cityops.perception import profiles
from cityops.perception import service as perception_service
from cityops.warning import repository as repo
from cityops.warning import stations as stations_module

HOURS = 96
STEP_S = 300  # the gauges' report interval
DEFAULT_SPEED = 360.0  # an hour of the episode in ten seconds
# Rainfall (mm) in each hour of the episode at a gauge of factor 1 (SYNTHETIC): about 1,150 mm in all.
RAIN_MM_PER_H: tuple[float, ...] = (
    0.5, 1, 1.5, 2, 2, 3, 3, 4, 4, 5, 5, 6,
    6, 7, 7, 8, 8, 9, 10, 11, 12, 14, 15, 16,
    18, 20, 22, 24, 26, 28, 30, 34, 38, 44, 52, 62,
    75, 88, 95, 82, 66, 50, 38, 28, 20, 14, 10, 8,
    6, 5, 4, 3, 2, 1.5, 1, 0.5, 0.3,
)
# How wet each county was, relative to that hyetograph (by the first six digits of the villages).
RAIN_FACTOR = {"410621": 1.15, "410622": 1.1, "410611": 1.0, "410603": 0.9, "410602": 0.85}
# Severity over the episode's hours, per kind of station: 0 normal, 1 the blue threshold ... 4 the red
# one (in between, in proportion; above 4, past red by as much again).
RIVER = ((0, 0.0), (12, 0.2), (20, 0.6), (26, 1.3), (32, 2.3), (38, 3.3), (44, 4.2), (50, 4.4), (56, 3.8),
         (62, 2.8), (68, 1.8), (74, 0.9), (82, 0.3), (96, 0.1))
SOIL = ((0, 0.0), (14, 0.4), (24, 1.2), (32, 2.2), (38, 3.2), (44, 4.2), (50, 4.3), (56, 3.3), (62, 2.3),
        (68, 1.4), (74, 0.6), (80, 0.2), (96, 0.0))
SLOPE = ((0, 0.0), (22, 0.4), (30, 1.3), (36, 2.4), (40, 3.4), (44, 4.3), (48, 4.3), (52, 3.1), (56, 2.1),
         (60, 1.1), (66, 0.4), (72, 0.0), (96, 0.0))
CURVES = {"river": RIVER, "reservoir": RIVER, "soil": SOIL, "slope": SLOPE}
# The metric the episode drives for each kind (a rain gauge's is its rainfall).
DRIVEN = {"river": "level", "reservoir": "level", "soil": "moisture", "slope": "displacement_1h"}
# Downstream crests come later; the reservoir fills first and holds part of the flood back.
LAG_H = {"盘石头水库": -2.0, "淇河": 0.0, "共产主义渠": 3.0, "卫河": 6.0}
PEAK = {"盘石头水库": 3.6, "石林": 3.5}  # the highest severity reached; 4.4 elsewhere (past red)
DEFAULT_PEAK = 4.4
SLOPE_BASE_MM = 12.0  # a slope sensor's cumulative displacement before the rain


@dataclass(frozen=True)
class FeedStation:
    """A station as the demo feeds it: its device's token and interval, and how its readings go."""

    code: str
    kind: str
    device_id: int
    token: str
    interval_s: int
    key: str  # the telemetry key it reports
    driven: str | None  # the metric the episode drives; None for a rain gauge
    thresholds: dict[str, float]  # of that metric, by level
    base: float  # the key's healthy value (a rate's: the cumulative value it starts from)
    rain_factor: float
    lag_h: float
    peak: float

    def upload(self, ts: int, value: float) -> perception_service.Upload:
        """A reading as the station's device sends it."""
        return perception_service.Upload(self.token, "http", points=[(self.key, ts, value, None)])


def feed_stations(session: Session, codes: Sequence[str] | None = None) -> list[FeedStation]:
    """The stations (all, or those named) whose devices can report: with an access token."""
    found = []
    for station in repo.all_stations(session):
        if codes is not None and station.code not in codes:
            continue
        device = perception_service.get_device(session, viewer=None, device_id=station.device_id)
        if not device.access_token:
            continue
        driven = DRIVEN.get(station.kind)
        thresholds = station.thresholds.get(driven, {}) if driven else {}
        if driven is not None and len(thresholds) < len(stations_module.LEVEL_CODES):
            driven, thresholds = None, {}  # the episode needs every level's threshold to follow
        if station.kind == "slope":
            base = SLOPE_BASE_MM
        elif thresholds:
            share = 0.6 if station.kind in ("river", "reservoir") else 0.7  # of the blue threshold
            base = round(min(thresholds.values()) * share, 2)
        else:
            base = 0.0
        where = station.water_body or station.hill or ""
        found.append(FeedStation(
            code=station.code, kind=station.kind, device_id=station.device_id, token=device.access_token,
            interval_s=profiles.registry().get(device.profile).report_interval_s,
            key=stations_module.METRICS[next(iter(station.thresholds))].key,
            driven=driven, thresholds=thresholds, base=base,
            rain_factor=RAIN_FACTOR.get(station.villages[0]["code"][:6], 1.0) if station.villages else 1.0,
            lag_h=LAG_H.get(where, 0.0), peak=PEAK.get(where, DEFAULT_PEAK)))
    return found


def healthy(station: FeedStation, rng: random.Random) -> float:
    """A reading in dry weather: no rain but a rare drizzle, rivers and soil at their usual level, a
    slope creeping by hundredths of a millimetre."""
    if station.kind == "rain":
        return round(rng.uniform(0.1, 0.3), 1) if rng.random() < 0.05 else 0.0
    if station.kind == "slope":
        return round(station.base + rng.uniform(-0.02, 0.02), 2)
    return round(station.base * (1 + rng.uniform(-0.01, 0.01)), 3)


def severity_at(curve: Sequence[tuple[float, float]], hour: float) -> float:
    """The curve's severity at an hour of the episode (linear between its points, flat outside)."""
    hours = [h for h, _s in curve]
    i = bisect.bisect_right(hours, hour)
    if i == 0:
        return curve[0][1]
    if i == len(curve):
        return curve[-1][1]
    (h0, s0), (h1, s1) = curve[i - 1], curve[i]
    return s0 + (s1 - s0) * (hour - h0) / (h1 - h0)


def value_at(thresholds: dict[str, float], base: float, severity: float) -> float:
    """The metric's value at a severity: the base at 0, the blue threshold at 1 ... red at 4."""
    steps = [base, *(thresholds[c] for c in stations_module.LEVEL_CODES)]
    if severity <= 0:
        return base
    k = min(int(severity), 3)
    return steps[k] + (severity - k) * (steps[k + 1] - steps[k])


@dataclass
class RainEpisode:
    """The episode's readings, step by step: a reading of every station at each step (`step_s` of
    reading time apart), dated so that the last step falls at `end_ms`."""

    feed: Sequence[FeedStation]
    end_ms: int
    hours: int = HOURS
    step_s: int = STEP_S
    seed: int = 0
    _values: list[list[float]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self._values = []
        running = {s.code: s.base for s in self.feed}  # a slope's cumulative displacement
        for k in range(self.steps):
            hour = k * self.step_s / 3600
            row = []
            for station in self.feed:
                if station.kind == "rain":
                    rate = RAIN_MM_PER_H[int(hour)] if int(hour) < len(RAIN_MM_PER_H) else 0.0
                    value = round(rate * station.rain_factor * self.step_s / 3600 * rng.uniform(0.9, 1.1), 2)
                elif station.driven is None:
                    value = healthy(station, rng)
                else:
                    severity = severity_at(CURVES[station.kind], hour - station.lag_h)
                    severity *= station.peak / DEFAULT_PEAK
                    target = value_at(station.thresholds, 0.0 if station.kind == "slope" else station.base,
                                      severity)
                    if station.kind == "slope":  # the rate per hour, accumulated step by step
                        running[station.code] += target * self.step_s / 3600
                        value = round(running[station.code], 3)
                    else:
                        value = round(target, 3)
                row.append(value)
            self._values.append(row)

    @classmethod
    def starting(cls, feed: Sequence[FeedStation], *, now_ms: int, speed: float, step_s: int = STEP_S,
                 seed: int = 0) -> RainEpisode:
        """An episode that starts now and, played at `speed`, ends in real time: its last reading is
        dated when it is sent."""
        steps = HOURS * 3600 // step_s
        return cls(feed, end_ms=now_ms + int((steps - 1) * step_s * 1000 / speed), step_s=step_s,
                   seed=seed)

    @property
    def steps(self) -> int:
        return self.hours * 3600 // self.step_s

    def ts(self, k: int) -> int:
        return self.end_ms - (self.steps - 1 - k) * self.step_s * 1000

    def uploads(self, k: int) -> list[perception_service.Upload]:
        """Step k's readings, one upload per station, as its device would send them."""
        ts = self.ts(k)
        return [s.upload(ts, value) for s, value in zip(self.feed, self._values[k], strict=True)]

    def due_by(self, elapsed_s: float, speed: float) -> int:
        """How many steps are due `elapsed_s` seconds after the start, at `speed`."""
        return min(self.steps, int(elapsed_s * speed / self.step_s) + 1)


@dataclass
class EpisodeReport:
    steps: int = 0
    readings: int = 0
    stopped: bool = False


def store(db: Database, uploads: list[perception_service.Upload]) -> None:
    """Through the ingestion path, in one transaction: its events go out on commit."""
    with db.session() as session:
        perception_service.store_uploads(session, uploads)


def play(db: Database, episode: RainEpisode, *, speed: float,
         clock: Callable[[], float] = time.monotonic,
         wait: Callable[[float], bool] | None = None,
         on_step: Callable[[int], None] | None = None) -> EpisodeReport:
    """Send the episode's steps as they fall due at `speed`, each step its own batch; `wait(seconds)`
    returns True when asked to stop (default: sleep). `on_step(k)` runs after step k is stored."""
    if not speed > 0:
        raise ValueError("speed must be a positive number of episode seconds per second")
    stop = threading.Event()
    wait = wait or stop.wait
    report = EpisodeReport()
    start = clock()
    for k in range(episode.steps):
        delay = start + k * episode.step_s / speed - clock()
        if delay > 0 and wait(delay):
            report.stopped = True
            break
        uploads = episode.uploads(k)
        store(db, uploads)
        report.steps += 1
        report.readings += len(uploads)
        if on_step is not None:
            on_step(k)
    return report


def prepare(db: Database, *, speed: float, codes: Sequence[str] | None = None, step_s: int = STEP_S,
            seed: int = 0, now_ms: int | None = None) -> RainEpisode:
    """An episode of the stations (all, or those named) starting now and ending, at `speed`, in
    real time: its last reading is dated when it is sent."""
    with db.sessions() as session:
        feed = feed_stations(session, codes)
    if not feed:
        raise ValueError("no station to feed: load the stations first (cityops seed, or cityops warnings "
                         "stations load FILE)")
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    return RainEpisode.starting(feed, now_ms=now_ms, speed=speed, step_s=step_s, seed=seed)


class StationFeed:
    """The stations' side of the live demo: each station reports a healthy reading at its device's
    interval (each at its own phase), and every `rain_every_s` seconds a heavy-rain episode at `speed`
    takes over until it has played out. The clock is the device simulator's (second t of its run,
    reading time `ts`)."""

    def __init__(self, db: Database, *, seed: int | None = None, rain_every_s: int = 0,
                 speed: float = DEFAULT_SPEED, step_s: int = STEP_S) -> None:
        self.db = db
        self.rng = random.Random(seed)
        self.rain_every_s = rain_every_s
        self.speed = speed
        self.step_s = step_s
        self.stations: list[FeedStation] = []
        self.phase: dict[str, int] = {}
        self.episode: RainEpisode | None = None
        self.episode_start_s = 0
        self.sent_steps = 0
        self.next_episode_s = rain_every_s
        self.episodes = 0

    def load(self) -> int:
        """The stations to feed; how many. The readings stored from now on are announced, so that a
        server draining this process's events evaluates the stations (monitor.watch)."""
        from cityops.warning import monitor

        monitor.watch()
        with self.db.sessions() as session:
            self.stations = feed_stations(session)
        self.phase = {s.code: self.rng.randrange(s.interval_s) for s in self.stations}
        return len(self.stations)

    def start_episode(self, second: int, ts: int) -> RainEpisode | None:
        if not self.stations:
            return None
        self.episode = RainEpisode.starting(self.stations, now_ms=ts, speed=self.speed, step_s=self.step_s,
                                            seed=self.rng.randrange(1 << 30))
        self.episode_start_s, self.sent_steps = second, 0
        self.episodes += 1
        return self.episode

    def tick(self, second: int, ts: int) -> int:
        """Send what is due in second t; how many readings."""
        if self.episode is None and self.rain_every_s and second >= self.next_episode_s:
            self.start_episode(second, ts)
        if self.episode is not None:
            return self._episode_tick(second)
        due = [s for s in self.stations if (second + self.phase[s.code]) % s.interval_s == 0]
        if due:
            store(self.db, [s.upload(ts, healthy(s, self.rng)) for s in due])
        return len(due)

    def _episode_tick(self, second: int) -> int:
        episode = self.episode
        assert episode is not None
        due = episode.due_by(second - self.episode_start_s, self.speed)
        sent = 0
        while self.sent_steps < due:
            uploads = episode.uploads(self.sent_steps)
            store(self.db, uploads)
            sent += len(uploads)
            self.sent_steps += 1
        if self.sent_steps >= episode.steps:
            self.episode = None
            self.next_episode_s = second + self.rain_every_s
        return sent
