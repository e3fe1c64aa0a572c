//! The few places where SQLite's and PostgreSQL's SQL differ. A store method
//! writes one statement and takes the part that differs from here: a fragment
//! of SQL, or a list of values bound as one parameter.

use sqlx::Type;
use sqlx::encode::{Encode, IsNull};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentsBuffer, SqliteTypeInfo};
use uuid::Uuid;

use super::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

impl Store {
    pub(super) fn dialect(&self) -> Dialect {
        match self {
            Store::Sqlite { .. } => Dialect::Sqlite,
            Store::Postgres(_) => Dialect::Postgres,
        }
    }
}

impl Dialect {
    /// Ends the subquery that picks the rows an `UPDATE` claims. On PostgreSQL
    /// SKIP LOCKED lets several instances claim side by side without waiting
    /// on each other's rows; SQLite runs one write at a time.
    pub(super) fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Ends a subquery that reads a row no one may change until this
    /// statement's transaction ends; SQLite runs one write at a time.
    pub(super) fn for_share(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR SHARE",
        }
    }

    /// A new random id.
    pub(super) fn random_id(self) -> &'static str {
        match self {
            Self::Sqlite => "randomblob(16)",
            Self::Postgres => "gen_random_uuid()",
        }
    }

    /// A new id for each row of an `INSERT … SELECT`. SQLite's follow the
    /// prefix bound as `$prefix_param`, numbered in the order of `order_by`
    /// (see `queue_digest_deliveries` for why); PostgreSQL's are random, and
    /// it is given no prefix.
    pub(super) fn row_ids(self, prefix_param: u8, order_by: &str) -> String {
        match self {
            Self::Sqlite => {
                format!("unhex(${prefix_param} || printf('%012x', row_number() OVER (ORDER BY {order_by})))")
            }
            Self::Postgres => self.random_id().to_string(),
        }
    }

    /// The 32 lower-case hex digits of the id `expression`.
    pub(super) fn id_hex(self, expression: &str) -> String {
        match self {
            Self::Sqlite => format!("lower(hex({expression}))"),
            Self::Postgres => format!("replace({expression}::text, '-', '')"),
        }
    }

    /// The function that makes a JSON object of its key and value arguments.
    pub(super) fn json_object(self) -> &'static str {
        match self {
            Self::Sqlite => "json_object",
            Self::Postgres => "json_build_object",
        }
    }

    /// The UTC day of a timestamp column, as `YYYY-MM-DD`.
    pub(super) fn day_of(self, column: &str) -> String {
        match self {
            Self::Sqlite => format!("substr({column}, 1, 10)"),
            Self::Postgres => format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
        }
    }

    /// `expression` is one of the values of the `List` bound as parameter `$param`.
    pub(super) fn in_list<T: ListItem>(self, expression: &str, param: u8) -> String {
        match self {
            Self::Sqlite => format!("{expression} IN (SELECT {} FROM json_each(${param}))", T::FROM_JSON),
            Self::Postgres => format!("{expression} = ANY(${param})"),
        }
    }
}

/// A list of values bound as one parameter: an array on PostgreSQL; on
/// SQLite, which has no arrays, a JSON array that `json_each` reads back.
pub(super) struct List<'a, T>(pub &'a [T]);

/// What a `List` can hold.
pub(super) trait ListItem: Type<Postgres> + PgHasArrayType + for<'q> Encode<'q, Postgres> {
    /// How SQLite reads an element of the JSON array (`value`) back.
    const FROM_JSON: &'static str;

    fn to_json(&self) -> serde_json::Value;
}

impl ListItem for Uuid {
    // SQLite keeps ids as 16-byte BLOBs; JSON carries them in hex.
    const FROM_JSON: &'static str = "unhex(value)";

    fn to_json(&self) -> serde_json::Value {
        self.simple().to_string().into()
    }
}

impl ListItem for String {
    const FROM_JSON: &'static str = "value";

    fn to_json(&self) -> serde_json::Value {
        self.as_str().into()
    }
}

impl<T: ListItem> Type<Sqlite> for List<'_, T> {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<T: ListItem> Encode<'_, Sqlite> for List<'_, T> {
    fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
        let json = serde_json::Value::Array(self.0.iter().map(ListItem::to_json).collect());
        <String as Encode<Sqlite>>::encode(json.to_string(), buf)
    }
}

impl<T: ListItem> Type<Postgres> for List<'_, T> {
    fn type_info() -> PgTypeInfo {
        <[T] as Type<Postgres>>::type_info()
    }
}

impl<'q, T: ListItem> Encode<'q, Postgres> for List<'_, T> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&[T] as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}
