"""models/components."""
