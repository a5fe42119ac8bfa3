"""What a finished pipeline shows (steps/lib/orchestration/outcome.py): the summary and the one
sentence on the registry."""

from __future__ import annotations

import dataclasses

from steps.lib.orchestration import outcome


def finished(alias_version: str | None) -> outcome.Outcome:
    return outcome.Outcome(step_ids={"prepare": "p1", "refit": "r1"}, test_rmse=2.0,
                            leaderboard_csv="family,val_rmse,final_params\nlasso,1.5,{}\n",
                            registered_model_name="m", registered_version="3", alias="champion",
                            alias_version=alias_version)


def test_summary_lists_result_registry_steps_and_leaderboard():
    text = outcome.summary(finished("3"))
    assert "| prepare | `p1` |" in text and "**2.0000**" in text and "| lasso | 1.5000 |" in text
    assert "Registered `m` version 3; @champion now points to it." in text
    assert "final_params" not in text


def test_registry_line_says_whether_the_alias_moved():
    assert outcome.registry_line(finished("1")) == "Registered `m` version 3; @champion stays on version 1."
    again = dataclasses.replace(finished("3"), registered_new=False)
    assert outcome.registry_line(again) == ("Registered `m` version 3 (an identical model was registered before: "
                                             "no new version); @champion now points to it.")
    assert outcome.registry_line(finished(None)) == "Registered `m` version 3; no version holds @champion."


def test_a_reused_package_step_says_it_registered_nothing_and_where_the_alias_is_now():
    reused = dataclasses.replace(finished("4"), step_ids={"package": "pk1"}, registered_new=False,
                                 package_reused=True)
    assert outcome.registry_line(reused) == ("Reused `m` version 3 (registered by package run pk1: nothing "
                                             "registered now); @champion is on version 4.")
