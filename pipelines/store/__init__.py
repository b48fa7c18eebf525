"""The MongoDB archive: embedded server, versioned writes, queries."""
