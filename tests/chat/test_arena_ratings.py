"""Arena standings: Bradley–Terry on the Elo scale, ties as half wins, a prior that keeps few votes near
1000, and a range that is wide with one vote and narrows as votes pile up."""

from __future__ import annotations

import pytest

from app.chat.arena_ratings import BASE_RATING, Outcome, fit_ratings, model_key, standings

NAMES = {"x": ("X", 1), "y": ("Y", 2), "z": ("Z", None)}


def test_no_votes_leaves_everyone_at_the_start():
    assert fit_ratings([], ["x", "y"]) == {"x": BASE_RATING, "y": BASE_RATING}


def test_an_even_record_rates_both_alike_and_ties_count_half():
    even = [Outcome("x", "y", 1.0), Outcome("x", "y", 0.0)]
    ratings = fit_ratings(even, ["x", "y"])
    assert ratings["x"] == pytest.approx(ratings["y"]) == pytest.approx(BASE_RATING)
    tied = fit_ratings([Outcome("x", "y", 0.5)] * 4, ["x", "y"])
    assert tied["x"] == pytest.approx(tied["y"]) == pytest.approx(BASE_RATING)


def test_more_wins_mean_a_higher_rating_but_one_win_is_not_infinite():
    one = fit_ratings([Outcome("x", "y", 1.0)], ["x", "y"])
    many = fit_ratings([Outcome("x", "y", 1.0)] * 10, ["x", "y"])
    assert BASE_RATING < one["x"] < many["x"] < BASE_RATING + 1000
    assert one["x"] - BASE_RATING == pytest.approx(BASE_RATING - one["y"])  # symmetric about the anchor


def test_ratings_follow_the_fitted_win_probability():
    """Bradley–Terry's fixed point: each model's expected wins equal its actual wins (plus the prior)."""
    votes = [Outcome("x", "y", 1.0)] * 6 + [Outcome("x", "y", 0.0)] * 2 + [Outcome("y", "z", 1.0)] * 5
    ratings = fit_ratings(votes, ["x", "y", "z"])

    def expected(r1, r2):
        return 1 / (1 + 10 ** ((r2 - r1) / 400))

    wins_x = 6 + 1  # one virtual win against the anchor
    expected_x = 8 * expected(ratings["x"], ratings["y"]) + 2 * expected(ratings["x"], BASE_RATING)
    assert expected_x == pytest.approx(wins_x, rel=1e-6)
    assert ratings["x"] > ratings["y"] > ratings["z"]


def test_standings_count_each_side_and_order_best_first():
    votes = [
        Outcome("x", "y", 1.0),
        Outcome("y", "x", 0.0),
        Outcome("x", "z", 0.5, both_bad=True),
        Outcome("z", "y", 0.5),
    ]
    table = standings(votes, NAMES)
    assert [row.key for row in table] == ["x", "z", "y"]
    x, z, y = table
    assert sum(row.rating for row in table) / 3 == pytest.approx(BASE_RATING)  # 1000: the average
    assert (x.battles, x.wins, x.losses, x.ties, x.both_bad) == (3, 2, 0, 1, 1)
    assert (y.battles, y.wins, y.losses, y.ties) == (3, 0, 2, 1)
    assert (z.name, z.model_id, z.both_bad) == ("Z", None, 1)
    assert x.win_rate == pytest.approx(2.5 / 3)
    for row in table:
        assert row.low <= row.rating <= row.high


def test_one_vote_leaves_a_wide_range_that_narrows_as_votes_pile_up():
    pair = {"x": NAMES["x"], "y": NAMES["y"]}
    one = {row.key: row for row in standings([Outcome("x", "y", 1.0)], pair)}
    assert one["x"].high - one["x"].low > 400  # one vote says little: it must not look certain
    assert one["x"].low < one["y"].high  # the ranges overlap
    widths = []
    for votes in (2, 20, 200):
        row = standings([Outcome("x", "y", 1.0), Outcome("x", "y", 0.0)] * votes, pair)[0]
        assert row.low < row.rating < row.high
        widths.append(row.high - row.low)
    assert widths[0] > widths[1] > widths[2]
    # Ten times the votes: a range about √10 ≈ 3.2 times narrower (a little more: the prior's share shrinks).
    assert 3.0 < widths[1] / widths[2] < 3.5


def test_a_clear_winner_over_many_votes_has_a_range_clear_of_the_loser():
    votes = [Outcome("x", "y", 1.0)] * 18 + [Outcome("x", "y", 0.0)] * 2
    table = standings(votes, {"x": NAMES["x"], "y": NAMES["y"]})
    x, y = table[0], table[-1]
    assert (x.key, y.key) == ("x", "y") and x.low > y.high


def test_a_deleted_model_keeps_its_own_key():
    assert model_key(7, "tuned") == "id:7"
    assert model_key(None, "tuned") == "name:tuned" != model_key(None, "other")
