"""Pure domain code: no I/O, no project adapters imported here."""
