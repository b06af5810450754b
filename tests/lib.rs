//! Integration tests of the Enforcer engine live in `integration/`, one
//! test binary with a module per area. This library is empty.
