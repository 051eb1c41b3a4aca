"""RQ job functions. Imported by workers only: the web tier names them by dotted string."""
