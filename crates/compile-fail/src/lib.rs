//! The mistakes a new user makes with Seawall's types fail to compile at once, with a message
//! naming the missing trait on the user's own type: the cases are in
//! `tests/compile_fail/*.rs`, each with its expected message in a `.stderr` file next to it.
//! This crate holds no code; it exists so that the cases build Seawall with the features
//! they use.
