//! Fake of a JSON HTTP service watched by the generic `http` connector.
