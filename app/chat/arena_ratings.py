"""Arena standings: Bradley–Terry ratings on the Elo scale from the user's votes, with 95% ranges.

Bradley–Terry (what LMSYS's Chatbot Arena moved to from online Elo) does not depend on the order the
votes came in, unlike Elo's running updates. Ties count half a win each way. Every model also plays two
virtual games (one won, one lost) against an anchor: without that prior a model that won its only battle
would be rated infinitely high; with it, few votes stay close together. The table is then centred so
that 1000 is the average of the user's models.

The range is the Wald interval from the fitted likelihood's curvature (Fisher information), for each
rating's distance from that average (the anchor's own uncertainty, common to every model, says nothing
about which model is better). A bootstrap, as LMSYS uses, says nothing with a handful of votes (one
vote resampled is always the same vote: a zero-width range), and a handful is what one user's arena has.
Pure functions: nothing here touches the database.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

BASE_RATING = 1000.0
SCALE = 400.0 / math.log(10)  # Elo points per natural-log unit of strength
PRIOR_GAMES = 2.0  # against the anchor: one won, one lost
Z_95 = 1.96
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
    games, wins = _tally(outcomes, keys)
    strength = dict.fromkeys(games, 1.0)
    for _ in range(MAX_ITERATIONS):
        updated = {}
        for k in games:
            denominator = PRIOR_GAMES / (strength[k] + 1.0)  # the anchor's strength is 1
            denominator += sum(n / (strength[k] + strength[j]) for j, n in games[k].items())
            updated[k] = wins[k] / denominator
        change = max((abs(math.log(updated[k] / strength[k])) for k in games), default=0.0)
        strength = updated
        if change < TOLERANCE:
            break
    return {k: BASE_RATING + SCALE * math.log(strength[k]) for k in games}


def rating_errors(outcomes: list[Outcome], ratings: dict[str, float]) -> dict[str, float]:
    """Standard error, in Elo points, of each rating's distance from the models' average: the inverse
    Fisher information of the log-strengths, seen through that contrast."""
    keys = list(ratings)
    if not keys:
        return {}
    index = {k: i for i, k in enumerate(keys)}
    games, _ = _tally(outcomes, keys)
    theta = {k: (ratings[k] - BASE_RATING) / SCALE for k in keys}
    information = np.zeros((len(keys), len(keys)))
    for k in keys:
        p_anchor = 1 / (1 + math.exp(-theta[k]))  # the prior games make the matrix invertible
        information[index[k], index[k]] += PRIOR_GAMES * p_anchor * (1 - p_anchor)
        for j, n in games[k].items():
            p = 1 / (1 + math.exp(theta[j] - theta[k]))
            weight = n * p * (1 - p)
            information[index[k], index[k]] += weight
            information[index[k], index[j]] -= weight
    covariance = np.linalg.inv(information)
    errors = {}
    for k in keys:
        contrast = np.full(len(keys), -1 / len(keys))
        contrast[index[k]] += 1
        errors[k] = SCALE * math.sqrt(max(float(contrast @ covariance @ contrast), 0.0))
    return errors


def standings(outcomes: list[Outcome], names: dict[str, tuple[str, int | None]]) -> list[Standing]:
    """One row per model in `names` (key → shown name, model id or None), best first."""
    rows = {key: Standing(key, *names[key]) for key in names}
    for outcome in outcomes:
        for key, score in ((outcome.a, outcome.score), (outcome.b, 1 - outcome.score)):
            row = rows[key]
            row.battles += 1
            row.wins += score == 1
            row.losses += score == 0
            row.ties += score == 0.5
            row.both_bad += outcome.both_bad
    ratings = fit_ratings(outcomes, rows)
    errors = rating_errors(outcomes, ratings)
    shift = sum(ratings.values()) / len(ratings) - BASE_RATING if ratings else 0.0
    for key, error in errors.items():
        rows[key].rating = ratings[key] - shift
        rows[key].low = rows[key].rating - Z_95 * error
        rows[key].high = rows[key].rating + Z_95 * error
    return sorted(rows.values(), key=lambda row: (-row.rating, row.name))


def _tally(
    outcomes: list[Outcome], keys: Iterable[str]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Games between each pair and each model's wins (ties half), the anchor's prior games included."""
    games: dict[str, dict[str, float]] = {k: defaultdict(float) for k in keys}
    wins = dict.fromkeys(games, PRIOR_GAMES / 2)
    for outcome in outcomes:
        games[outcome.a][outcome.b] += 1
        games[outcome.b][outcome.a] += 1
        wins[outcome.a] += outcome.score
        wins[outcome.b] += 1 - outcome.score
    return games, wins
