"""Commands that talk to a Datarun server through :mod:`datarun.client`."""
