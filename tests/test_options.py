"""How step options read their values (steps/lib/options.py): whole numbers written as floats,
fractions, yes/no switches, and settings written back as a step's command line takes them."""

from __future__ import annotations

import click
import pytest

from steps.lib import options


def test_whole_reads_a_whole_number_written_as_a_float_as_an_int():
    value = options.Whole(min=1)("50.0")
    assert (value, type(value)) == (50, int)


@pytest.mark.parametrize("text", ["50.5", "fifty", ""])
def test_whole_refuses_what_is_not_a_whole_number(text):
    with pytest.raises(click.BadParameter, match="is not a valid whole number"):
        options.Whole(min=1)(text)


@pytest.mark.parametrize("text", ["0", "65", "65.0"])
def test_whole_refuses_a_number_out_of_its_range(text):
    with pytest.raises(click.BadParameter, match=r"is not in the range 1<=x<=64"):
        options.Whole(min=1, max=64)(text)


@pytest.mark.parametrize("text", ["0", "1", "-0.1", "1.5"])
def test_fraction_is_strictly_between_0_and_1(text):
    with pytest.raises(click.BadParameter, match=r"is not in the range 0\.0<x<1\.0"):
        options.FRACTION(text)


@pytest.mark.parametrize(("text", "value"), [("true", True), ("FALSE", False), (True, True), (False, False)])
def test_switch_reads_true_or_false_in_any_case_as_a_bool(text, value):
    assert options.Switch()(text) is value


def test_switch_refuses_anything_else():
    with pytest.raises(click.BadParameter, match="'yes' is not one of 'true', 'false'"):
        options.Switch()("yes")


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (False, "false"), (50, "50"), (0.2, "0.2"), ("a", "a")])
def test_as_text_writes_a_setting_back_as_the_step_reads_it(value, text):
    assert options.as_text(value) == text
