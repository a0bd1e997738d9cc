"""`ONEBENCH_PLUGINS=tests.fake_backends_plugin`: the test doubles as a plugin, for `bench` commands."""

from tests.fake_backends import register_all

register_all()
