//! Statement helpers: multi-row inserts within SQLite's bind limit, id lists bound as one JSON
//! parameter, and paging.

use compliance_core::domain::PageRequest;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteConnection};
use sqlx::Sqlite;
use uuid::Uuid;

/// A query with its arguments.
pub(crate) type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;

/// SQLite's limit on bound parameters per statement (since 3.32).
const MAX_BINDS: usize = 32_766;

/// Inserts `rows` with as few statements as the bind limit allows.
///
/// `head` is everything before the value tuples (`INSERT INTO t (a, b) VALUES `), `tail`
/// anything after them (`ON CONFLICT …`). Rows go in chunks of at most `max_rows`; the
/// remainder is split into powers of two, so that a table never needs more than a dozen
/// distinct statements and each stays in the connection's prepared-statement cache.
pub(crate) async fn insert_rows<T, F>(
    conn: &mut SqliteConnection,
    head: &str,
    tail: &str,
    columns: usize,
    max_rows: usize,
    rows: &[T],
    bind: F,
) -> Result<(), sqlx::Error>
where
    T: Sync,
    F: for<'q> Fn(SqliteQuery<'q>, &'q T) -> SqliteQuery<'q>,
{
    let limit = (MAX_BINDS / columns.max(1)).min(max_rows).max(1);
    let mut rest = rows;
    while !rest.is_empty() {
        let n = chunk_len(rest.len(), limit);
        let (chunk, after) = rest.split_at(n);
        let sql = values_sql(head, tail, columns, n);
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = bind(query, row);
        }
        query.execute(&mut *conn).await?;
        rest = after;
    }
    Ok(())
}

/// The next chunk: `limit` rows, else the largest power of two that fits.
fn chunk_len(remaining: usize, limit: usize) -> usize {
    if remaining >= limit {
        return limit;
    }
    // `remaining` is at least 1 here, so the shift leaves at least 1.
    1 << (usize::BITS - 1 - remaining.leading_zeros())
}

fn values_sql(head: &str, tail: &str, columns: usize, rows: usize) -> String {
    let tuple = format!("({})", vec!["?"; columns].join(","));
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * (tuple.len() + 1));
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&tuple);
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// A list of ids as one JSON array of hex strings, for `IN (SELECT unhex(value) FROM
/// json_each(?))`: one statement text whatever the list's length.
pub(crate) fn id_list(ids: impl IntoIterator<Item = Uuid>) -> String {
    let hex: Vec<String> = ids.into_iter().map(|id| id.simple().to_string()).collect();
    serde_json::to_string(&hex).unwrap_or_else(|_| "[]".to_owned())
}

/// A list of strings as one JSON array, for `IN (SELECT value FROM json_each(?))`.
pub(crate) fn text_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".to_owned())
}

/// `LIMIT ? OFFSET ?` values of a page request.
pub(crate) fn limit_offset(page: PageRequest) -> (i64, i64) {
    (i64::from(page.effective_limit()), i64::from(page.offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_the_limit_then_powers_of_two() {
        let mut sizes = Vec::new();
        let mut remaining = 1000;
        while remaining > 0 {
            let n = chunk_len(remaining, 256);
            sizes.push(n);
            remaining -= n;
        }
        assert_eq!(sizes, vec![256, 256, 256, 128, 64, 32, 8]);
    }

    #[test]
    fn values_sql_has_one_tuple_per_row() {
        let sql = values_sql("INSERT INTO t (a, b) VALUES ", "", 2, 3);
        assert_eq!(
            sql.trim_end(),
            "INSERT INTO t (a, b) VALUES (?,?),(?,?),(?,?)"
        );
    }
}
