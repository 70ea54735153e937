//! Paging of the lists the API returns, shared by every service: a list is bounded
//! (`limit`, with a default and a maximum per route), resumes after an opaque cursor
//! (`after`: the key of the last item of the previous page, given back as `next`) and
//! says how many items there are in all (`total`), so that no client can make an instance
//! build an answer as large as its state.

use serde::Serialize;
use std::collections::HashMap;

/// Longest cursor accepted (keys are ids, names or positions; far shorter).
const MAX_CURSOR: usize = 512;

/// What a client asked for: at most `limit` items after the cursor `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// Most items in the page.
    pub limit: usize,
    /// The `next` of the previous page: items whose key is greater come next.
    pub after: Option<String>,
}

/// One page of a list, rendered by the service under its own names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The items of the page, in the list's order.
    pub items: Vec<T>,
    /// How many items the whole list holds.
    pub total: usize,
    /// The cursor for the next page (`after=`), `None` on the last page.
    pub next: Option<String>,
}

/// A bad paging parameter: which one, and what was expected and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    /// `limit` or `after`.
    pub field: &'static str,
    /// What was expected and what was found.
    pub message: String,
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl PageQuery {
    /// Reads `limit` (default `default`, from 1 to `max`) and `after` from a query string's
    /// parameters; the error names the parameter, what was expected and what was found.
    pub fn parse(q: &HashMap<String, String>, default: usize, max: usize) -> Result<Self, PageError> {
        let limit = match q.get("limit") {
            None => default,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    return Err(PageError {
                        field: "limit",
                        message: format!("expected an integer from 1 to {max}, found {:?}", shorten(l)),
                    })
                }
            },
        };
        let after = match q.get("after") {
            None => None,
            Some(a) if !a.is_empty() && a.len() <= MAX_CURSOR => Some(a.clone()),
            Some(a) => {
                let message = format!("expected the `next` cursor of a previous page (1 to {MAX_CURSOR} bytes), found {:?}", shorten(a));
                return Err(PageError { field: "after", message });
            }
        };
        Ok(PageQuery { limit, after })
    }

    /// The page of `items` (in ascending, unique `key` order) after the cursor. Only the
    /// page's items are kept; the others are counted.
    pub fn page<T, K: Ord + ?Sized>(
        &self,
        items: impl IntoIterator<Item = T>,
        key: impl Fn(&T) -> &K,
        cursor: impl Fn(&T) -> String,
    ) -> Page<T>
    where
        String: std::borrow::Borrow<K>,
    {
        use std::borrow::Borrow;
        let mut out = Vec::with_capacity(self.limit.min(1024));
        let (mut total, mut more) = (0, false);
        for it in items {
            total += 1;
            if self.after.as_ref().is_some_and(|a| key(&it) <= a.borrow()) {
                continue;
            }
            if out.len() < self.limit {
                out.push(it);
            } else {
                more = true;
            }
        }
        let next = if more { out.last().map(&cursor) } else { None };
        Page { items: out, total, next }
    }
}

/// A client's text shown short in an error.
fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn limit_has_a_default_and_a_maximum() {
        assert_eq!(PageQuery::parse(&q(&[]), 100, 1000).unwrap(), PageQuery { limit: 100, after: None });
        assert_eq!(PageQuery::parse(&q(&[("limit", "1000")]), 100, 1000).unwrap().limit, 1000);
        for bad in ["0", "1001", "-1", "ten", ""] {
            let e = PageQuery::parse(&q(&[("limit", bad)]), 100, 1000).unwrap_err().to_string();
            assert!(e.starts_with("limit: expected an integer from 1 to 1000, found"), "{e}");
        }
        let e = PageQuery::parse(&q(&[("after", &"x".repeat(600))]), 100, 1000).unwrap_err().to_string();
        assert!(e.starts_with("after: expected the `next` cursor"), "{e}");
    }

    #[test]
    fn pages_walk_the_whole_list_once() {
        let names: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
        let mut seen = vec![];
        let mut query = PageQuery { limit: 10, after: None };
        loop {
            let p = query.page(names.iter().cloned(), |s: &String| s.as_str(), |s| s.clone());
            assert_eq!(p.total, 25);
            assert!(p.items.len() <= 10);
            seen.extend(p.items);
            match p.next {
                Some(n) => query.after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, names);
    }
}
