"""The model the row-writing workload inserts into, and the auth function every back end uses."""
