"""A store's own files: local and remote file systems, metadata.yaml, extra data, paths, time zones."""
