"""The measurement: jobs and the planner, the protocol, statistics, trust, parity, the worker and the runner."""
