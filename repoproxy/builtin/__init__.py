"""Built-in plugins, registered from :data:`repoproxy.plugins.DEFAULT_PLUGINS`."""
