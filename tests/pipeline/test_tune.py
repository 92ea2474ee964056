"""amad_suite.tune's pure parts: setting one method option, parsing values, and picking the best mean."""

import pytest

from amad.errors import ConfigError
from amad_suite.tune import best, parse_value, validation_headline, with_option, with_param

PARAMS = {"distill": {"methods": {"amad": {"amad_kl": {"weight": "auto", "tau": 1.0}}}}}


def test_with_option_changes_only_a_copy():
    changed = with_option(PARAMS, "amad", "amad_kl.tau", 0.1)
    assert changed["distill"]["methods"]["amad"]["amad_kl"] == {"weight": "auto", "tau": 0.1}
    assert PARAMS["distill"]["methods"]["amad"]["amad_kl"]["tau"] == 1.0


@pytest.mark.parametrize(
    ("method", "option", "message"),
    [("amad", "amad_kl.tua", "did you mean 'tau'"), ("amd", "amad_kl.tau", "did you mean 'amad'")],
)
def test_with_option_rejects_names_that_do_not_exist(method, option, message):
    with pytest.raises(ConfigError, match=message):
        with_option(PARAMS, method, option, 0.1)


def test_parse_value_keeps_numbers_numeric():
    assert parse_value("3") == 3 and parse_value("0.05") == 0.05 and parse_value("strided") == "strided"


def test_best_takes_the_highest_mean_over_seeds():
    rows = [
        {"value": 0.5, "seed": 0, "val_metric": 10.0},
        {"value": 0.5, "seed": 1, "val_metric": 30.0},
        {"value": 0.1, "seed": 0, "val_metric": 25.0},
        {"value": 0.1, "seed": 1, "val_metric": 12.0},
    ]
    assert best(rows) == (0.5, 20.0)


def test_with_param_sets_any_dotted_key_in_a_copy():
    params = {"student": {"setups": {"blip-caption": {"train": {}}}}}
    changed = with_param(params, "student.setups.blip-caption.train.max_steps", 450)
    assert changed["student"]["setups"]["blip-caption"]["train"] == {"max_steps": 450}
    assert params["student"]["setups"]["blip-caption"]["train"] == {}


def test_with_param_needs_an_existing_section():
    params = {"student": {"setups": {"blip-caption": {"train": {}}}}}
    with pytest.raises(ConfigError, match="did you mean 'blip-caption'"):
        with_param(params, "student.setups.blip-captoin.train.max_steps", 450)
    with pytest.raises(ConfigError, match="is not a section"):
        with_param({"a": {"b": 1}}, "a.b.c", 2)


def test_a_per_set_headline_is_read_from_the_validation_split():
    assert validation_headline("BLEU/test2016") == "BLEU/val"
    assert validation_headline("CIDEr") == "CIDEr" and validation_headline("accuracy") == "accuracy"


def test_best_within_a_margin_takes_the_first_listed_value_near_the_best():
    rows = [
        {"value": v, "seed": 0, "val_metric": m} for v, m in ((1000, 83.2), (1500, 87.8), (2000, 87.8), (3000, 88.7))
    ]
    assert best(rows) == (3000, 88.7)
    assert best(rows, within=1.0) == (1500, 87.8)
    assert best(rows, within=0.5) == (3000, 88.7)


def test_the_teacher_pseudo_method_is_the_name_no_distill_method_may_take():
    from amad_suite import tune
    from amad_suite.pipeline import params

    assert tune.TEACHER == params.TEACHER and params.TEACHER in params.RESERVED_METHODS
