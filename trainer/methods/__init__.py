"""Methods from METHODS.md: MRE, GUS, mixed loss, merging/correcting."""
