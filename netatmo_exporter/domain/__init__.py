"""The domain, standard library only: weather, energy, history and authorization, each a
subpackage; the call policy, the ports, the errors and the read model they share."""
