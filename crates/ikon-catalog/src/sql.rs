//! A small SQL text builder emitting `$N` placeholders, which both engines accept. (sqlx's
//! `QueryBuilder` emits `?` for the `Any` driver, which PostgreSQL rejects.)

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

/// A bound value.
#[derive(Debug, Clone)]
pub enum Arg {
    /// Text.
    Str(String),
    /// Integer.
    I64(i64),
    /// Nullable integer.
    OptI64(Option<i64>),
}

/// SQL text plus its arguments in placeholder order.
#[derive(Debug, Default)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    /// Starts with `s`.
    pub fn new(s: &str) -> Sql {
        Sql {
            text: s.to_string(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, s: &str) -> &mut Sql {
        self.text.push_str(s);
        self
    }

    /// Appends a placeholder bound to `a`.
    pub fn bind(&mut self, a: Arg) -> &mut Sql {
        self.args.push(a);
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends a text placeholder.
    pub fn bind_str(&mut self, s: &str) -> &mut Sql {
        self.bind(Arg::Str(s.to_string()))
    }

    /// Appends an integer placeholder.
    pub fn bind_i64(&mut self, v: i64) -> &mut Sql {
        self.bind(Arg::I64(v))
    }

    /// Appends `(NULL, p1, p2, …)` for a list of strings: `x IN` it matches exactly the
    /// listed values (`(NULL)` when empty matches nothing, not even `''`, which a column may
    /// legitimately hold — a detached disk's instance, an empty tag value).
    pub fn bind_list<'s>(&mut self, items: impl IntoIterator<Item = &'s str>) -> &mut Sql {
        self.push("(NULL");
        for s in items {
            self.push(", ");
            self.bind_str(s);
        }
        self.push(")")
    }

    /// The query with every argument bound.
    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for a in &self.args {
            q = match a {
                Arg::Str(s) => q.bind(s.as_str()),
                Arg::I64(v) => q.bind(*v),
                Arg::OptI64(v) => q.bind(*v),
            };
        }
        q
    }
}
