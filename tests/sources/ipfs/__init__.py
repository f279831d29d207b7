"""Tests of the IPFS source against a real node (a package, so its conftest keeps to itself)."""
