"""What runs inside the sandbox: standard library, numpy and the problem's own
dependencies (rampwf for RAMP kits) only. Never import Django here."""
