"""Property tests: store-local → UTC around DST gaps and folds, and money parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.threedcart.mapping import local_to_utc, parse_money, utc_to_local

ZONES = [
    ZoneInfo(name)
    for name in (
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",  # 30-minute DST shift
        "America/St_Johns",
        "Pacific/Apia",  # skipped a whole day in December 2011
        "Asia/Kolkata",
        "UTC",
    )
]
naive_times = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 12, 31))
zones = st.sampled_from(ZONES)


def exists(moment: datetime, zone: ZoneInfo) -> bool:
    return utc_to_local(moment.replace(tzinfo=zone).astimezone(UTC), zone) == moment


@settings(max_examples=300, deadline=None)
@given(naive_times, zones)
def test_result_is_aware_utc_and_existing_times_round_trip(moment: datetime, zone: ZoneInfo) -> None:
    converted = local_to_utc(moment, zone)
    assert converted.utcoffset() == timedelta(0)
    if exists(moment, zone):
        assert utc_to_local(converted, zone) == moment
    else:
        # a time in a DST gap maps to the instant the clocks jumped, shown after the gap locally
        assert utc_to_local(converted, zone) > moment


@settings(max_examples=300, deadline=None)
@given(naive_times, st.integers(min_value=0, max_value=3 * 3600), zones)
def test_later_store_time_never_maps_earlier(moment: datetime, step: int, zone: ZoneInfo) -> None:
    later = moment + timedelta(seconds=step)
    assert local_to_utc(moment, zone) <= local_to_utc(later, zone)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)),
    zones,
)
def test_every_instant_survives_utc_to_local_and_back_up_to_the_fold(
    instant: datetime, zone: ZoneInfo
) -> None:
    back = local_to_utc(utc_to_local(instant, zone), zone)
    # in a fold the earlier instant is chosen, so going back never lands later than the original
    assert back <= instant
    assert instant - back <= timedelta(hours=1)


def test_known_fold_and_gap_in_new_york() -> None:
    zone = ZoneInfo("America/New_York")
    assert local_to_utc(datetime(2025, 11, 2, 1, 30), zone) == datetime(2025, 11, 2, 5, 30, tzinfo=UTC)
    assert local_to_utc(datetime(2025, 3, 9, 2, 30), zone) == datetime(2025, 3, 9, 7, 0, tzinfo=UTC)
    assert local_to_utc(datetime(2011, 12, 30, 12, 0), ZoneInfo("Pacific/Apia")) == datetime(
        2011, 12, 30, 10, 0, tzinfo=UTC
    )


cents = st.integers(min_value=-(10**11), max_value=10**11).map(lambda n: Decimal(n).scaleb(-2))


@settings(max_examples=300, deadline=None)
@given(cents)
def test_money_from_json_number_string_or_float_is_exact(amount: Decimal) -> None:
    assert parse_money(float(amount)) == amount
    assert parse_money(str(amount)) == amount
    assert parse_money(json.loads(json.dumps(float(amount)))) == amount


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=-(10**6), max_value=10**6, allow_nan=False, allow_infinity=False, places=4))
def test_money_rounds_half_up_to_cents(amount: Decimal) -> None:
    parsed = parse_money(str(amount))
    assert parsed.as_tuple().exponent == -2
    assert abs(parsed - amount) <= Decimal("0.005")


@given(st.one_of(st.booleans(), st.text(alphabet="abc$,€ ", min_size=1), st.just("NaN"), st.just("Infinity")))
def test_non_numbers_are_refused(value: object) -> None:
    try:
        parse_money(value)
    except ValueError:
        return
    raise AssertionError(f"{value!r} was read as money")
