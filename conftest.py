"""Root conftest: the shared fixtures come from ``repoproxy.testing.fixtures`` (see pyproject)."""
