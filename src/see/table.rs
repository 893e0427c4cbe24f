//! [`Table`]: the rows of one read-only query, kept in the query's column
//! order, served as JSON (an array of objects named by the columns) or CSV.
//!
//! Every API answer is built from these, so a column's name in the SQL is
//! its name in the API: the README documents the SQL's aliases.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Params};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// Column names and rows of values, in the order the query gave them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// Runs `sql` and keeps every row.
    pub fn query(conn: &Connection, sql: &str, params: impl Params) -> rusqlite::Result<Self> {
        let mut stmt = conn.prepare_cached(sql)?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let width = columns.len();
        let mut rows = Vec::new();
        let mut cursor = stmt.query(params)?;
        while let Some(row) = cursor.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(json_value(row.get_ref(i)?));
            }
            rows.push(values);
        }
        Ok(Table { columns, rows })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The value of `column` in row `row`, if both exist.
    pub fn get(&self, row: usize, column: &str) -> Option<&Value> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.rows.get(row).map(|r| &r[i])
    }

    /// RFC 4180 CSV with a header line; fields quoted when they need it.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|c| csv_field(c)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for row in &self.rows {
            let fields: Vec<String> = row
                .iter()
                .map(|v| match v {
                    Value::Null => String::new(),
                    Value::String(s) => csv_field(s),
                    other => other.to_string(),
                })
                .collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

fn csv_field(text: &str) -> String {
    // A leading = + - @ would be a formula to a spreadsheet: quoted and
    // prefixed with ', the usual defence (ids come from agents).
    let formula = text.starts_with(['=', '+', '-', '@']);
    if formula || text.contains([',', '"', '\r', '\n']) {
        let prefix = if formula { "'" } else { "" };
        format!("\"{prefix}{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn json_value(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        // No column the views read holds a blob; the length says one is there.
        ValueRef::Blob(b) => Value::from(format!("<{} bytes>", b.len())),
    }
}

impl Serialize for Table {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.rows.len()))?;
        for row in &self.rows {
            seq.serialize_element(&RowRef {
                columns: &self.columns,
                values: row,
            })?;
        }
        seq.end()
    }
}

struct RowRef<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl Serialize for RowRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.columns.len()))?;
        for (column, value) in self.columns.iter().zip(self.values) {
            map.serialize_entry(column, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_column_order_and_types_in_json_and_csv() {
        let conn = Connection::open_in_memory().unwrap();
        let table = Table::query(
            &conn,
            "SELECT 'a,b' AS zeta, 2 AS alpha, 0.5 AS mid, NULL AS none, '=1+1' AS formula",
            [],
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&table).unwrap(),
            r#"[{"zeta":"a,b","alpha":2,"mid":0.5,"none":null,"formula":"=1+1"}]"#
        );
        assert_eq!(
            table.to_csv(),
            "zeta,alpha,mid,none,formula\r\n\"a,b\",2,0.5,,\"'=1+1\"\r\n"
        );
    }
}
