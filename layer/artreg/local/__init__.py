"""The embedded default: the registry's ports on one machine, over a SQLite file and a folder of
blobs, with no AWS account."""
