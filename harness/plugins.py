"""Models and backends from outside the project: modules named in `ONEBENCH_PLUGINS` are imported.

A plugin module registers what it adds when imported (`model_zoo.registry.register(ModelSpec(...))`,
`backends.registry.register(name, "module:Class")`), as timm's `register_model` does. The CLI and
every measurement process load them, so a plugin model runs like a built-in one.
"""

from __future__ import annotations

import importlib
import os

from harness.errors import HarnessError

ENV = "ONEBENCH_PLUGINS"


def named() -> list[str]:
    """The modules $ONEBENCH_PLUGINS names, in order (records list them)."""
    return [n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()]


def load_plugins() -> list[str]:
    """Import every comma-separated module of $ONEBENCH_PLUGINS (once each); return their names. Anything a
    plugin raises at import, `sys.exit()` included, is one HarnessError: a plugin never ends a command itself."""
    names = named()
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise HarnessError(f"{ENV} names {name!r}, which cannot be imported ({exc}); fix the variable or PYTHONPATH") from None
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin's own bug is the user's to fix
            where = f" at line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
            what = (f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            raise HarnessError(f"the plugin {name!r} failed while importing{where}: {what}") from None
    return names
