"""Example backends (a small shop) and the gateway config that fronts them."""
