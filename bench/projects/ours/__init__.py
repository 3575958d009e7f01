"""The back end under test: logux_sync, used through its public API only."""
