"""Pure rules and records: names, versions, manifests and the wire schema of API.md. No I/O."""
