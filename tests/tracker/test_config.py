"""TrackerConfig ranges and the shared argparse options."""

from __future__ import annotations

import argparse

import pytest

from tracker.config import TrackerConfig, add_tracker_arguments, config_from_args


def parse(*argv: str) -> TrackerConfig:
    parser = add_tracker_arguments(argparse.ArgumentParser())
    return config_from_args(parser.parse_args(list(argv)))


def test_defaults_round_trip_through_the_parser():
    assert parse() == TrackerConfig()


def test_options_reach_the_config():
    config = parse("--tracker", "botsort", "--match-threshold", "0.7", "--clip-stride", "2", "--realtime",
                   "--reid", "sta.onnx", "--detector", "yolo11n.pt", "--batch-detect")
    assert (config.tracker_type, config.match_threshold, config.clip_stride) == ("botsort", 0.7, 2)
    assert config.realtime and config.batch_detect
    assert (config.reid, config.detector) == ("sta.onnx", "yolo11n.pt")


@pytest.mark.parametrize("kwargs, message", [
    ({"clip_len": 0}, "clip_len"),
    ({"clip_stride": 0}, "clip_stride"),
    ({"det_conf": 1.5}, "det_conf"),
    ({"match_threshold": 2.0}, "match_threshold"),
    ({"min_clips": 0}, "min_clips"),
    ({"track_low_thresh": 0.5, "track_high_thresh": 0.3}, "track_low_thresh"),
    ({"gmc_method": "magic"}, "gmc_method"),
])
def test_out_of_range_values_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrackerConfig(**kwargs)


def test_bad_value_on_the_command_line_is_a_value_error():
    with pytest.raises(ValueError, match="clip_len"):
        parse("--clip-len", "0")


def test_ultralytics_args_carry_the_thresholds():
    args = TrackerConfig(tracker_type="botsort", track_buffer=50, gmc_method="none").ultralytics_args()
    assert args["track_buffer"] == 50 and args["gmc_method"] is None and args["with_reid"] is False
