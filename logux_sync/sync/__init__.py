"""Model sync: `LoguxSynced` models live in every subscribed browser as Logux SyncMaps."""
