"""Peer formats: age v1 files, SOPS (age recipients), Bitnami Sealed Secrets."""
