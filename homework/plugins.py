"""The per-app plugin manager: built-in hook implementations, entry points, direct plugins."""

from collections.abc import Iterable

import pluggy

from . import hookspecs

hookimpl = pluggy.HookimplMarker("homework")
ENTRY_POINT_GROUP = "homework"


def make_plugin_manager(plugins: Iterable[object] = (), load_entry_points: bool = True):
    """Return a new plugin manager with the built-in defaults and the given plugins."""
    pm = pluggy.PluginManager("homework")
    pm.add_hookspecs(hookspecs)
    from . import defaults

    pm.register(defaults, name="homework.defaults")
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in plugins:
        pm.register(plugin)
    # A misspelled hook implementation (e.g. `curent_therapist`) must fail at start-up,
    # not be silently ignored.
    pm.check_pending()
    return pm


def plugin_summary(pm: pluggy.PluginManager) -> list[dict]:
    """List each registered plugin with the hooks it implements."""
    rows = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append({"name": name, "hooks": hooks})
    return rows
