"""Offline data generation and model training for idetex_lite."""
