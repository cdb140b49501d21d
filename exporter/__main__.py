from exporter.command import entry_point

entry_point()
