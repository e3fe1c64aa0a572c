//! What the migrations made, described alike for both backends: lets a test
//! check that the SQLite and PostgreSQL migrations stay in step.

use super::{Store, StoreResult};

/// The application's tables, indexes and unique constraints, each list sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub columns: Vec<SchemaColumn>,
    pub indexes: Vec<SchemaIndex>,
    pub unique_constraints: Vec<UniqueConstraint>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaColumn {
    pub table: String,
    pub name: String,
    pub column_type: ColumnType,
    pub nullable: bool,
}

/// A column's type as SQLite keeps its values, which is as far as the two
/// backends can agree: sqlx stores a time there as TEXT and a UUID as a
/// BLOB, and SQLite's INTEGER (64 bits) stands for PostgreSQL's integer and
/// bigint alike.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ColumnType {
    Text,
    Integer,
    Real,
    Boolean,
    Blob,
    /// A type neither backend's migrations use yet, as declared.
    Other(String),
}

/// An index made by `CREATE INDEX` (those of constraints are `UniqueConstraint`s).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaIndex {
    pub table: String,
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
    /// A partial index's condition, normalised (see `normalise_predicate`).
    pub predicate: Option<String>,
}

/// A primary key or `UNIQUE` constraint. Each backend names their indexes
/// its own way, so they are known by table and columns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UniqueConstraint {
    pub table: String,
    pub columns: Vec<String>,
    pub primary_key: bool,
}

/// (table, column, declared type, nullable)
type ColumnRow = (String, String, String, bool);

/// (table, index, unique, origin: `pk`, `u` or `c` as SQLite says, columns
/// joined by commas, partial index condition)
type IndexRow = (String, String, bool, String, String, Option<String>);

impl Store {
    /// The schema the migrations made, but for sqlx's own table.
    pub async fn schema(&self) -> StoreResult<Schema> {
        let (columns, indexes): (Vec<ColumnRow>, Vec<IndexRow>) = match self {
            Store::Sqlite { reader, .. } => {
                let columns = sqlx::query_as(
                    "SELECT m.name, p.name, p.type, p.\"notnull\" = 0 \
                     FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
                )
                .fetch_all(reader)
                .await?;
                let indexes = sqlx::query_as(
                    "SELECT m.name, l.name, l.\"unique\", l.origin, \
                         (SELECT string_agg(name, ',' ORDER BY seqno) FROM pragma_index_info(l.name)), \
                         CASE WHEN l.partial THEN substr(x.sql, instr(upper(x.sql), ' WHERE ') + 7) END \
                     FROM sqlite_master m JOIN pragma_index_list(m.name) l \
                     LEFT JOIN sqlite_master x ON x.type = 'index' AND x.name = l.name \
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
                )
                .fetch_all(reader)
                .await?;
                (columns, indexes)
            }
            Store::Postgres(pool) => {
                let columns = sqlx::query_as(
                    "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'YES' \
                     FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%'",
                )
                .fetch_all(pool)
                .await?;
                // A foreign key's constraint names the index it refers to as well, hence the `contype`.
                let indexes = sqlx::query_as(
                    "SELECT t.relname::text, i.relname::text, x.indisunique, \
                         CASE WHEN x.indisprimary THEN 'pk' WHEN c.contype = 'u' THEN 'u' ELSE 'c' END, \
                         (SELECT string_agg(pg_get_indexdef(x.indexrelid, k, true), ',' ORDER BY k) \
                          FROM generate_series(1, x.indnkeyatts) AS k), \
                         pg_get_expr(x.indpred, x.indrelid) \
                     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
                     JOIN pg_namespace n ON n.oid = t.relnamespace \
                     LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype = 'u' \
                     WHERE n.nspname = current_schema() AND t.relname NOT LIKE '_sqlx%'",
                )
                .fetch_all(pool)
                .await?;
                (columns, indexes)
            }
        };
        Ok(Schema::from_rows(columns, indexes))
    }

    /// Every (table, column) of the application's schema, sorted.
    pub async fn table_columns(&self) -> StoreResult<Vec<(String, String)>> {
        Ok(self.schema().await?.columns.into_iter().map(|column| (column.table, column.name)).collect())
    }
}

impl Schema {
    fn from_rows(columns: Vec<ColumnRow>, indexes: Vec<IndexRow>) -> Schema {
        let mut columns: Vec<SchemaColumn> = columns
            .into_iter()
            .map(|(table, name, declared, nullable)| SchemaColumn {
                table,
                name,
                column_type: ColumnType::from_declared(&declared),
                nullable,
            })
            .collect();
        let mut schema_indexes = Vec::new();
        let mut unique_constraints = Vec::new();
        for (table, name, unique, origin, columns, predicate) in indexes {
            let columns = columns.split(',').map(str::to_string).collect();
            match origin.as_str() {
                "c" => schema_indexes.push(SchemaIndex {
                    table,
                    name,
                    columns,
                    unique,
                    predicate: predicate.as_deref().map(normalise_predicate),
                }),
                origin => unique_constraints.push(UniqueConstraint { table, columns, primary_key: origin == "pk" }),
            }
        }
        columns.sort();
        schema_indexes.sort();
        unique_constraints.sort();
        Schema { columns, indexes: schema_indexes, unique_constraints }
    }
}

impl ColumnType {
    /// From a type as SQLite's migrations declare it, or as PostgreSQL's
    /// `information_schema` names it.
    fn from_declared(declared: &str) -> ColumnType {
        match declared.to_ascii_lowercase().as_str() {
            "text" | "character varying" | "timestamp with time zone" => ColumnType::Text,
            "integer" | "bigint" | "smallint" => ColumnType::Integer,
            "real" | "double precision" => ColumnType::Real,
            "boolean" => ColumnType::Boolean,
            "blob" | "uuid" => ColumnType::Blob,
            other => ColumnType::Other(other.to_string()),
        }
    }
}

/// A partial index's condition in one spelling for both backends: lower
/// case, without casts, parentheses or repeated spaces, and with
/// PostgreSQL's `= ANY (ARRAY[…])` as the `IN (…)` it was written as.
fn normalise_predicate(predicate: &str) -> String {
    let lower = predicate.to_lowercase();
    let without_casts = regex::Regex::new(r"::[a-z_]+").expect("a valid pattern").replace_all(&lower, "");
    let as_written = without_casts.replace("= any (array[", "in (").replace("])", ")");
    as_written.replace(['(', ')'], " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::normalise_predicate;

    #[test]
    fn a_partial_index_condition_reads_the_same_from_either_backend() {
        assert_eq!(
            normalise_predicate("status IN ('queued', 'sending')"),
            normalise_predicate("(status = ANY (ARRAY['queued'::text, 'sending'::text]))")
        );
        assert_eq!(normalise_predicate("claim_id IS NOT NULL"), normalise_predicate("(claim_id IS NOT NULL)"));
    }
}
