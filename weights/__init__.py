"""Shipped model files (installed as the package ``fer_live.weights``)."""
