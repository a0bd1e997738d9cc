"""Tracking over time: compare, lockstep runs, history, nightly, the gate's self-check."""
