//! tape-macros
