"""What `bench list` shows: backends with their availability, models with their figures."""
