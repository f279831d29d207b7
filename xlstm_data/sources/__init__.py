"""Data sources: one module per kind, behind the interface in protocol.py (see registry.py)."""
