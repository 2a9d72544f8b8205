"""Delivery: snapshots and change streams to SDKs, remote evaluation, replica fan-out."""
