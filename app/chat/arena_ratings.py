"""Arena standings: Bradley–Terry ratings on the Elo scale from the user's votes, with bootstrap ranges.

Bradley–Terry (what LMSYS's Chatbot Arena moved to from online Elo) does not depend on the order the
votes came in, unlike Elo's running updates. Ties count half a win each way. Every model also plays two
virtual games (one won, one lost) against an anchor rated 1000: without that prior a model that won its
only battle would be rated infinitely high; with it, few votes stay near 1000 and the range says how
little is known. Pure functions: the route hands in the battles, nothing here touches the database.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

BASE_RATING = 1000.0
SCALE = 400.0 / math.log(10)  # Elo points per natural-log unit of strength
PRIOR_GAMES = 2.0  # against the anchor: one won, one lost
BOOTSTRAP_ROUNDS = 100
MAX_ITERATIONS = 500
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Outcome:
    """One vote: `a` and `b` are model keys; `score` is A's share of the win (1, 0 or 0.5)."""

    a: str
    b: str
    score: float
    both_bad: bool = False  # a tie the user marked "both bad"


@dataclass
class Standing:
    key: str
    name: str
    model_id: int | None
    rating: float = BASE_RATING
    low: float = BASE_RATING
    high: float = BASE_RATING
    battles: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    both_bad: int = 0

    @property
    def win_rate(self) -> float | None:
        """Ties count half, as in the rating."""
        return (self.wins + self.ties / 2) / self.battles if self.battles else None


def model_key(model_id: int | None, name: str) -> str:
    """A deleted model (id gone) is still told apart from the others by its name."""
    return f"id:{model_id}" if model_id is not None else f"name:{name}"


def fit_ratings(outcomes: list[Outcome], keys: Iterable[str]) -> dict[str, float]:
    """Elo-scale Bradley–Terry ratings by Hunter's MM updates (each step raises the likelihood)."""
    keys = list(keys)
    games: dict[str, dict[str, float]] = {k: defaultdict(float) for k in keys}
    wins = dict.fromkeys(keys, PRIOR_GAMES / 2)
    for outcome in outcomes:
        games[outcome.a][outcome.b] += 1
        games[outcome.b][outcome.a] += 1
        wins[outcome.a] += outcome.score
        wins[outcome.b] += 1 - outcome.score
    strength = dict.fromkeys(keys, 1.0)
    for _ in range(MAX_ITERATIONS):
        updated = {}
        for k in keys:
            denominator = PRIOR_GAMES / (strength[k] + 1.0)  # the anchor's strength is 1
            denominator += sum(n / (strength[k] + strength[j]) for j, n in games[k].items())
            updated[k] = wins[k] / denominator
        change = max((abs(math.log(updated[k] / strength[k])) for k in keys), default=0.0)
        strength = updated
        if change < TOLERANCE:
            break
    return {k: BASE_RATING + SCALE * math.log(strength[k]) for k in keys}


def standings(outcomes: list[Outcome], names: dict[str, tuple[str, int | None]]) -> list[Standing]:
    """One row per model that has battled, best first. `names`: key → (shown name, model id or None).

    The range is the 2.5th–97.5th percentile of the rating over bootstrap resamples of the votes
    (seeded: the same votes always give the same page)."""
    rows = {key: Standing(key, *names[key]) for key in names}
    for outcome in outcomes:
        for key, score in ((outcome.a, outcome.score), (outcome.b, 1 - outcome.score)):
            row = rows[key]
            row.battles += 1
            row.wins += score == 1
            row.losses += score == 0
            row.ties += score == 0.5
            row.both_bad += outcome.both_bad
    for key, rating in fit_ratings(outcomes, rows).items():
        rows[key].rating = rating
    if outcomes:
        rng = random.Random(0)
        samples: dict[str, list[float]] = defaultdict(list)
        for _ in range(BOOTSTRAP_ROUNDS):
            resampled = rng.choices(outcomes, k=len(outcomes))
            for key, rating in fit_ratings(resampled, rows).items():
                samples[key].append(rating)
        for key, values in samples.items():
            values.sort()
            rows[key].low = values[int(0.025 * (len(values) - 1))]
            rows[key].high = values[math.ceil(0.975 * (len(values) - 1))]
    return sorted(rows.values(), key=lambda row: (-row.rating, row.name))
