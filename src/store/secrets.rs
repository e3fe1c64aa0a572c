use super::{Store, StoreResult, on_writer};

impl Store {
    /// The secret stored under `name`, storing `candidate` first if there is none.
    /// Concurrent callers all get the one value that won.
    pub async fn get_or_create_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        on_writer!(self, |pool| {
            sqlx::query("INSERT INTO app_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(candidate)
                .execute(pool)
                .await?;
            sqlx::query_scalar("SELECT value FROM app_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await
                .map_err(Into::into)
        })
    }
}
