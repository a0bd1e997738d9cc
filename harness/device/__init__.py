"""The device path: bundles for a phone and the ingestion of what it measured."""
