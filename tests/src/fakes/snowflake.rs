//! Fake of Snowflake SQL API v2.
