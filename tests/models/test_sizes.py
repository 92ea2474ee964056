"""Named model sizes and size-dict validation."""

from __future__ import annotations

import pytest

from amad.errors import ConfigError, UnknownNameError
from amad.models import MODEL_SIZES, resolve_size
from amad.models.sizes import BLIP_TEXT_KEYS, BLIP_VISION_KEYS, VLT5_KEYS

CONTRACT_NAMES = {
    f"{family}-{scale}-{role}"
    for family in ("vlt5", "blip")
    for scale in ("tiny", "smoke")
    for role in ("teacher", "student")
} | {"vlt5-base", "vlt5-small", "blip-base", "blip-small"}


def test_registered_names_and_schemas():
    assert set(MODEL_SIZES.names()) == CONTRACT_NAMES
    for name in MODEL_SIZES.names():
        size = resolve_size(name)
        assert size["family"] == name.split("-")[0]
        if size["family"] == "vlt5":
            assert set(VLT5_KEYS) <= set(size)
        else:
            assert set(size["vision"]) == set(BLIP_VISION_KEYS) and set(size["text"]) == set(BLIP_TEXT_KEYS)
            # BlipForQuestionAnswering needs equal text and vision widths
            assert size["text"]["hidden_size"] == size["vision"]["hidden_size"], name


@pytest.mark.parametrize("family", ["vlt5", "blip"])
@pytest.mark.parametrize("scale", ["tiny", "smoke"])
def test_students_have_fewer_heads_and_layers(family, scale):
    teacher, student = resolve_size(f"{family}-{scale}-teacher"), resolve_size(f"{family}-{scale}-student")
    if family == "vlt5":
        assert student["num_heads"] < teacher["num_heads"] and student["num_layers"] < teacher["num_layers"]
        # same inner width, so init="teacher" can copy whole attention layers
        assert student["num_heads"] * student["d_kv"] == teacher["num_heads"] * teacher["d_kv"]
    else:
        for tower in ("vision", "text"):
            t, s = teacher[tower], student[tower]
            assert (
                s["num_attention_heads"] < t["num_attention_heads"] and s["num_hidden_layers"] < t["num_hidden_layers"]
            )
    if scale == "tiny":
        heads = teacher["num_heads"] if family == "vlt5" else teacher["text"]["num_attention_heads"]
        assert 8 <= heads <= 12


def test_paper_sizes():
    base, small = resolve_size("vlt5-base"), resolve_size("vlt5-small")
    assert (base["d_model"], base["num_layers"], base["num_heads"], base["d_kv"], base["d_ff"]) == (
        768,
        12,
        12,
        64,
        3072,
    )
    assert (base["feat_dim"], base["n_boxes"]) == (2048, 36)
    assert (small["d_model"], small["num_layers"], small["num_heads"], small["d_ff"]) == (512, 6, 8, 2048)
    blip = resolve_size("blip-base")
    assert blip["vision"] == dict(zip(BLIP_VISION_KEYS, (768, 12, 12, 3072, 384, 16)))
    assert blip["text"]["num_attention_heads"] == 12 and blip["prompt"] == "a picture of "
    assert "label_smoothing" not in blip  # a training setting (TrainConfig.label_smoothing), not a size key


def test_unknown_name_lists_near_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'blip-tiny-teacher'") as err:
        resolve_size("blip-tiny-teachr")
    assert "choose one of" in str(err.value)


def test_resolve_returns_a_copy():
    size = resolve_size("blip-tiny-student")
    size["text"]["hidden_size"] = 1
    assert resolve_size("blip-tiny-student")["text"]["hidden_size"] == 128
    assert resolve_size(size)["text"]["hidden_size"] == 1  # dicts pass through (validated)


def test_bad_size_dicts_name_the_allowed_keys():
    size = resolve_size("vlt5-smoke-student")
    with pytest.raises(ConfigError, match=r"vlt5 size has unknown keys \['heads'\]: allowed keys are family, d_model"):
        resolve_size({**size, "heads": 2})
    del size["d_ff"]
    with pytest.raises(ConfigError, match=r"missing keys \['d_ff'\]"):
        resolve_size(size)
    blip = resolve_size("blip-smoke-student")
    blip["vision"]["patch"] = 4
    with pytest.raises(
        ConfigError, match=r"blip vision size has unknown keys \['patch'\]: allowed keys are hidden_size"
    ):
        resolve_size(blip)
    with pytest.raises(ConfigError, match="'num_heads' must be a positive integer, got 0"):
        resolve_size({**resolve_size("vlt5-smoke-student"), "num_heads": 0})
    with pytest.raises(ConfigError, match="'dropout' must be a number in"):
        resolve_size({**resolve_size("blip-smoke-student"), "dropout": 1.5})
    with pytest.raises(ConfigError, match="model size is for family 'vlt5' but the model family is 'blip'"):
        resolve_size("vlt5-smoke-student", "blip")
    with pytest.raises(ConfigError, match="needs 'family'"):
        resolve_size({"d_model": 8})
