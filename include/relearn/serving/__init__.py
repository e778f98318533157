"""Serving: load the deployed model, predict, log every prediction, attach outcomes later."""
