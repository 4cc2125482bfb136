"""RAMP kits written the way kits in the wild are, run by ramp-workflow and Datarun."""
