"""The defaults the README states are the ones ``TrackerConfig`` (and so every command line) uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracker.config import TrackerConfig

README = Path(__file__).resolve().parents[2] / "README.md"

# flag -> TrackerConfig field, for every flag whose default the README states as "`--flag` VALUE"
STATED = {
    "--match-threshold": "match_threshold",
    "--covisible-frames": "covisible_frames",
    "--min-crop-height": "min_crop_height",
    "--min-crop-conf": "min_crop_conf",
    "--border-margin": "border_margin",
    "--revise-margin": "revise_margin",
    "--link-seconds": "link_seconds",
    "--link-relax": "link_relax",
    "--clip-len": "clip_len",
}


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def stated_values(text: str) -> dict[str, list[float]]:
    """Every "`--flag` 0.5" and "`--flag` (0.5" in the text: flag -> the numbers, in order."""
    found: dict[str, list[float]] = {}
    for flag, value in re.findall(r"`(--[a-z-]+)`\s+\(?([0-9]+(?:\.[0-9]+)?)", text):
        found.setdefault(flag, []).append(float(value))
    return found


def test_the_parser_reads_the_readme_form():
    assert stated_values("with `--link-relax` 0.10 lower; `--match-threshold`\n(0.88; x); `--x 3`") == {
        "--link-relax": [0.10], "--match-threshold": [0.88]}


def test_every_flag_default_the_readme_states_is_the_configs(readme):
    found = stated_values(readme)
    assert set(STATED) <= set(found), f"the README no longer states {sorted(set(STATED) - set(found))}"
    defaults = TrackerConfig()
    for flag, values in found.items():
        if flag in STATED:
            assert values == [pytest.approx(getattr(defaults, STATED[flag]))] * len(values), flag


@pytest.mark.parametrize(("pattern", "field"), [
    (r"narrower than (\d+) px", "min_crop_width"),  # the crop filters
    (r"NMS IoU ([0-9.]+)\) for every row", "det_iou"),  # the detector's NMS in the measured tables
    (r"`--min-clips` clips \((\d+) = (\d+) frames\)", "min_clips"),
    (r"`--connect-timeout`\s+seconds \(default (\d+)", "connect_timeout"),
])
def test_defaults_stated_in_prose(readme, pattern, field):
    match = re.search(pattern, readme)
    assert match, f"README no longer says {pattern!r}"
    defaults = TrackerConfig()
    assert float(match.group(1)) == pytest.approx(getattr(defaults, field))
    if field == "min_clips":  # "(2 = 8 frames)": min_clips clips of clip_len frames
        assert int(match.group(2)) == defaults.min_clips * defaults.clip_len


def test_help_shows_the_same_defaults():
    import argparse

    from tracker.config import add_tracker_arguments

    text = add_tracker_arguments(argparse.ArgumentParser()).format_help()
    text = re.sub(r"\s+", " ", text)
    for flag, field in STATED.items():
        value = getattr(TrackerConfig(), field)
        assert re.search(rf"{flag} {flag.lstrip('-').upper().replace('-', '_')} (?:(?!--).)*?\(default: {value}\)", text), flag


def test_the_auto_detector_defaults_are_the_readmes(readme):
    from tracker.detector_cache import AUTO_IMGSZ, AUTO_SPEC

    text = re.sub(r"\s+", " ", readme)
    assert re.search(r"`auto` \(the default\) runs, on a CPU, the OpenVINO build", text)
    stated = re.search(r"makes and caches \(below, \"Detector\"\), at `--imgsz` (\d+)", text)
    assert stated and int(stated.group(1)) == AUTO_IMGSZ
    assert f"| **OpenVINO {AUTO_SPEC.precision}, dynamic {AUTO_IMGSZ} (`--detector auto`)** |" in readme
    assert TrackerConfig().imgsz is None  # None: the detector's own size, the one stated above
