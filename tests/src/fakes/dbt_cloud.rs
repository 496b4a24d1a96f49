//! Fake of dbt Cloud (Admin API v2 and the Discovery API).
