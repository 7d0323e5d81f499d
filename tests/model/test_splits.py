"""The strict global time split and the validation period: sizes from the data, no leak, clear refusals;
and tuning, which must never read the test period."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aisle.core.errors import BadInput
from ingestion.synthetic.shop import ShopConfig, generate_shop
from models.splits import SplitSpec, backtest_cuts, holdout, validation
from models.tuning import tune


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return generate_shop(ShopConfig(users=1500, items=250, days=40, seed=8)).events.to_pandas()


def test_the_test_period_is_the_last_fraction_and_nothing_leaks(events: pd.DataFrame) -> None:
    split = holdout(events, SplitSpec(test_fraction=0.1), min_users=20)
    assert split.test["ts"].min() >= split.cutoff > split.train["ts"].max()
    assert len(split.train) + len(split.test) == len(events)
    assert abs(len(split.test) / len(events) - 0.1) < 0.01  # sized from the data, not from days
    assert set(split.relevance["user_id"]) == set(split.users)
    val = validation(split.train, SplitSpec(test_fraction=0.1))
    assert val.test["ts"].max() < split.cutoff  # the validation period lies inside the training data
    assert val.test["ts"].min() >= val.cutoff > val.train["ts"].max()


def test_a_date_or_days_cut_and_a_window_end(events: pd.DataFrame) -> None:
    start = pd.to_datetime(events["ts"], utc=True).quantile(0.7).floor("D")
    end = start + pd.Timedelta(days=3)
    split = holdout(events, SplitSpec(test_start=start.isoformat(), test_end=end.isoformat()))
    assert split.cutoff == start and split.test["ts"].max() < end and split.train["ts"].max() < start
    by_days = holdout(events, SplitSpec(holdout_days=5))
    assert by_days.cutoff == pd.to_datetime(events["ts"], utc=True).max() - pd.Timedelta(days=5)


def test_thin_data_is_refused_in_one_sentence(events: pd.DataFrame) -> None:
    tiny = events.sort_values("ts").head(40)
    with pytest.raises(BadInput, match=r"too thin to evaluate.*--test-fraction"):
        holdout(tiny, SplitSpec(), min_users=20)
    with pytest.raises(BadInput, match="no events before the test period"):
        holdout(events, SplitSpec(test_start="1999-01-01"))
    with pytest.raises(BadInput, match="test_fraction"):
        SplitSpec(test_fraction=0.9)


def test_backtest_folds_roll_back_without_overlap(events: pd.DataFrame) -> None:
    cuts = backtest_cuts(events, SplitSpec(test_fraction=0.1), 3)
    assert len(cuts) == 3
    ends = [end for _, end in cuts]
    starts = [cut for cut, _ in cuts]
    assert ends[1:] == starts[:-1]  # each earlier fold ends where the later one starts
    assert all(cut < end for cut, end in cuts) and starts == sorted(starts, reverse=True)
    sizes = [((events["ts"] >= c) & (events["ts"] < e)).sum() for c, e in cuts]
    assert max(sizes) - min(sizes) <= 0.02 * len(events)  # the same share of events per fold


def test_tuning_never_reads_the_test_period(events: pd.DataFrame) -> None:
    """Rewrite the test period completely: every tuning decision stays the same."""
    spec = SplitSpec()
    split = holdout(events, spec, min_users=20)
    first = tune(validation(split.train, spec), None, trials=4)
    scrambled = events.copy()
    later = pd.to_datetime(scrambled["ts"], utc=True) >= split.cutoff
    rng = np.random.default_rng(0)
    scrambled.loc[later, "item_id"] = rng.permutation(scrambled.loc[later, "item_id"].to_numpy())
    again = holdout(scrambled, spec, min_users=20)
    assert again.cutoff == split.cutoff and not again.test["item_id"].equals(split.test["item_id"])
    second = tune(validation(again.train, spec), None, trials=4)
    assert first == second
