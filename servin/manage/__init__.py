"""The management API under /api/v1: its envelope and, so far, key and token management."""
