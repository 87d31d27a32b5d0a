"""The use cases of the registry, written against the ports in `ports` (the records that cross them
in `records`, the tunables in `policy`); raises domain errors. The facade is `service.RegistryService`.
Nothing is imported here, so that an adapter importing `records` or `policy` loads no use case."""
