"""A/B promotion of a challenger: from the arms' figures to moved aliases.

``stats`` (anytime-valid comparisons) and ``policy`` (what to do next) are pure; ``arms``
turns the store's counts into the arms' figures; ``aliases`` moves aliases crash-safely;
``decision`` decides and applies one step of a test; ``deploy`` starts tests and moves them on;
``champion`` changes aliases by hand; ``cli`` is ``relearn ab`` / ``relearn registry``.
"""


class DeployError(RuntimeError):
    """The requested deployment change is not possible in the current state (says why)."""
