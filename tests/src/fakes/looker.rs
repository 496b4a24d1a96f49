//! Fake of Looker API 4.0.
