from exporter.cli import entry_point

entry_point()
