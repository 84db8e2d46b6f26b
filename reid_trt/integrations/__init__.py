"""Where apps already run re-ID: adapters and configs for the trackers that consume it (BoxMOT,
DeepStream's nvtracker). Each follows its consumer's own input rules, checked by tests against the
consumer itself or its documented rules."""
