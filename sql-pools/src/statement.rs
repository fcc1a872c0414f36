//! One statement type for both backends: SQL text with `?` placeholders and the values bound to
//! them, built up the way sqlx's `QueryBuilder` is. Both MySQL and SQLite take `?`, and the
//! services store only text, integers and NULL (ids as UUID text, instants as milliseconds), so
//! a [`Value`] is one of those three.

/// A value bound to a placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Integer(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Integer(value)
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Self::Text(value.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// SQL text and its bound values, in placeholder order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statement {
    sql: String,
    values: Vec<Value>,
}

impl Statement {
    /// A statement starting with `sql`.
    #[must_use]
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    /// Binds the next `?` already in the text (for fixed statements: `Statement::new("… ?").bind(x)`).
    #[must_use]
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.values.push(value.into());
        self
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a `?` bound to `value`.
    pub fn push_bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.sql.push('?');
        self.values.push(value.into());
        self
    }

    /// Appends `(?, ?, …)` binding each value; an empty list yields `(NULL)`, which matches
    /// nothing in an `in`.
    pub fn push_list<V: Into<Value>>(&mut self, values: impl IntoIterator<Item = V>) -> &mut Self {
        let mut empty = true;
        for value in values {
            self.sql.push_str(if empty { "(?" } else { ", ?" });
            self.values.push(value.into());
            empty = false;
        }
        self.sql.push_str(if empty { "(NULL)" } else { ")" });
        self
    }

    /// Appends `values (…), (…)`: one tuple per item, its values pushed by `row`.
    pub fn push_values<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut row: impl FnMut(&mut Tuple<'_>, T),
    ) -> &mut Self {
        self.sql.push_str("values ");
        for (index, item) in items.into_iter().enumerate() {
            if index > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push('(');
            row(
                &mut Tuple {
                    statement: self,
                    first: true,
                },
                item,
            );
            self.sql.push(')');
        }
        self
    }

    /// The SQL text.
    #[must_use]
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The bound values, in placeholder order.
    #[must_use]
    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

/// One tuple of [`Statement::push_values`].
pub struct Tuple<'a> {
    statement: &'a mut Statement,
    first: bool,
}

impl Tuple<'_> {
    /// Appends the next value of the tuple.
    pub fn push_bind(&mut self, value: impl Into<Value>) -> &mut Self {
        if !self.first {
            self.statement.sql.push_str(", ");
        }
        self.first = false;
        self.statement.push_bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_text_and_values_in_placeholder_order() {
        let mut statement = Statement::new("select * from t where a = ");
        statement
            .push_bind(1_i64)
            .push(" and b in ")
            .push_list(["x", "y"])
            .push(" and c in ")
            .push_list(Vec::<String>::new());
        assert_eq!(
            statement.sql(),
            "select * from t where a = ? and b in (?, ?) and c in (NULL)"
        );
        assert_eq!(
            statement.values(),
            [Value::Integer(1), Value::from("x"), Value::from("y")]
        );
    }

    #[test]
    fn builds_multi_row_values() {
        let mut statement = Statement::new("insert into t (a, b) ");
        statement.push_values([(1_i64, Some("x")), (2, None)], |tuple, (a, b)| {
            tuple.push_bind(a).push_bind(b);
        });
        assert_eq!(
            statement.sql(),
            "insert into t (a, b) values (?, ?), (?, ?)"
        );
        assert_eq!(
            statement.values(),
            [
                Value::Integer(1),
                Value::from("x"),
                Value::Integer(2),
                Value::Null
            ]
        );
        let fixed = Statement::new("delete from t where a = ?").bind(Some(3_i64));
        assert_eq!(fixed.values(), [Value::Integer(3)]);
    }
}
