//! The client side of the control socket, used by the CLI.
