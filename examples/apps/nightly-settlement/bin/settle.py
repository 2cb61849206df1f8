"""Settles the day's shipments (placeholder)."""
import configparser
import sys

config = configparser.ConfigParser()
config.read(sys.argv[sys.argv.index("--config") + 1])
print("settling against", config.get("db", "host", fallback="?"))
