"""A/B promotion: per-arm statistics, the stage policy, and the deployer that moves aliases."""


class DeployError(RuntimeError):
    """The requested deployment change is not possible in the current state (says why)."""
