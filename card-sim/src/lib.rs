//! Virtual cards.
