"""The only code that touches sockets, HTTP, the clock and the database driver."""
