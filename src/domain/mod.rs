//! The domain's vocabulary: the words stored and exchanged, each with its one
//! text form. At the bottom of the crate: every module may import it, and it
//! imports nothing from the crate.

pub mod user_state;

pub use user_state::UserState;
