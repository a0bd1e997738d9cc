"""Evaluation: accuracy through the timed artifact, and the datasets it reads."""
