"""Settings package: ``base`` (embedded defaults), ``production`` (strict), ``test``."""
