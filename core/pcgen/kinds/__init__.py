"""The core's kinds of point cloud, registered by :mod:`pcgen.builtin` like any plugin's: jets and showers."""
