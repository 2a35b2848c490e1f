//! Procedural macros for Switchboard.
