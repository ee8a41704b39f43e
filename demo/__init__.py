"""The demo city: seed data and the street network `make demo` runs on. Not a Django app."""
