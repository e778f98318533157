"""The arm of a logged prediction follows the version the live A/B test serves from it."""

from __future__ import annotations

from relearn.collect.arms import ArmVersions, served_by


def test_without_a_test_a_row_without_an_arm_is_the_champions():
    assert served_by([None, "challenger"], ["1", "2"], None) == ["champion", "challenger"]


def test_the_arm_follows_the_version_during_a_test():
    """A contradicting arm is corrected, not rejected: while a promotion completes, the
    assignment names the new champion's version that the test still serves as challenger."""
    arms = ArmVersions(champion="3", challenger="4")
    given = [None, None, None, "champion", "challenger", "challenger", "canary"]
    versions = ["3", "4", "2", "4", "3", "2", "4"]
    assert served_by(given, versions, arms) == [
        "champion",
        "challenger",
        "champion",
        "challenger",
        "champion",
        "challenger",
        "canary",
    ]
