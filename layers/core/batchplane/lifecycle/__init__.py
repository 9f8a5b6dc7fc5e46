"""The pure state machine of a job and its attempts: what may follow what, and what it records."""
