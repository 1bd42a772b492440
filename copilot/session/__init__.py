"""The session engine: its state machine and gate, planning, step runs, events, and the views it answers with."""
