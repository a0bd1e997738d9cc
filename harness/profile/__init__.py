"""`bench profile`: where the time goes inside a model, per op and per layer, on each runtime's own profiler."""
