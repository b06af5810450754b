//! Ed25519 signatures over rule builds: keys, signing, and the trusted-key check made before a rule is loaded.
