"""Imports on the API side: receiving the upload (``receive``), the background runner."""
