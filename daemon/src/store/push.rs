//! Push state that outlives a restart (migration 0007): when each push
//! token was last used. Rows only: when to write them is the service's.

use std::time::SystemTime;

use sqlx::Row;

use super::{Result, Store, from_ms, to_ms};

impl Store {
    /// When each push token (by SHA-256) was last used, as last written.
    pub async fn push_tokens_used(&self) -> Result<Vec<(String, SystemTime)>> {
        let rows = sqlx::query("SELECT sha256, last_used_at FROM push_tokens")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("sha256")?,
                    from_ms(row.try_get("last_used_at")?),
                ))
            })
            .collect()
    }

    /// Records the tokens' latest use, in one transaction; a time older than
    /// the stored one does not move it back.
    pub async fn note_push_tokens_used(&self, used: &[(String, SystemTime)]) -> Result<()> {
        let mut tx = self.write_pool().begin().await?;
        for (sha256, at) in used {
            sqlx::query(
                "INSERT INTO push_tokens (sha256, last_used_at) VALUES ($1, $2) \
                 ON CONFLICT (sha256) DO UPDATE SET last_used_at = excluded.last_used_at \
                 WHERE excluded.last_used_at > push_tokens.last_used_at",
            )
            .bind(sha256.as_str())
            .bind(to_ms(*at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
