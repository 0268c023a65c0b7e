"""MARLIN (paper section 5; SPEC 9): phase 1 agents (`agents`), the phase 2 game (`game`) and the registered
schedulers with their per-epoch log (`scheduler`)."""
