use serde::{Deserialize, Serialize};

/// Which slice of a list to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// How many items to skip.
    pub offset: u32,
    /// How many items to return at most (adapters clamp to [`PageRequest::MAX_LIMIT`]).
    pub limit: u32,
}

impl PageRequest {
    /// The largest page any adapter returns.
    pub const MAX_LIMIT: u32 = 1000;

    /// A page starting at `offset` with at most `limit` items (clamped to 1..=`MAX_LIMIT`).
    #[must_use]
    pub fn new(offset: u32, limit: u32) -> Self {
        Self {
            offset,
            limit: limit.clamp(1, Self::MAX_LIMIT),
        }
    }

    /// The limit after clamping, for adapters that receive a raw value.
    #[must_use]
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(1, Self::MAX_LIMIT)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: 50,
        }
    }
}

/// One slice of a list, with the size of the whole list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this slice, in the list's order.
    pub items: Vec<T>,
    /// How many items the whole list holds.
    pub total: u64,
    /// The offset this slice starts at.
    pub offset: u32,
    /// The limit that was applied.
    pub limit: u32,
}

impl<T> Page<T> {
    /// Cuts `all` (already filtered and ordered) into the requested slice.
    #[must_use]
    pub fn from_vec(all: Vec<T>, request: PageRequest) -> Self {
        let total = all.len() as u64;
        let limit = request.effective_limit();
        let items = all
            .into_iter()
            .skip(request.offset as usize)
            .take(limit as usize)
            .collect();
        Self {
            items,
            total,
            offset: request.offset,
            limit,
        }
    }

    /// Maps the items, keeping the paging figures.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            offset: self.offset,
            limit: self.limit,
        }
    }
}
