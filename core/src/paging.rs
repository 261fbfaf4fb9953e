//! Offset paging shared by every list endpoint.

use thiserror::Error;

pub const MAX_PAGE_SIZE: u32 = 100;
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Deep offsets are refused rather than scanned.
pub const MAX_OFFSET: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PagingError {
    #[error("size must be between 1 and {MAX_PAGE_SIZE}")]
    Size,
    #[error("offset must be between 0 and {MAX_OFFSET}")]
    Offset,
}

impl PagingError {
    /// The query parameter at fault.
    pub fn field(&self) -> &'static str {
        match self {
            PagingError::Size => "size",
            PagingError::Offset => "offset",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: u32,
    pub size: u32,
}

impl PageRequest {
    pub fn new(offset: Option<u32>, size: Option<u32>) -> Result<Self, PagingError> {
        let offset = offset.unwrap_or(0);
        let size = size.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(PagingError::Size);
        }
        if offset > MAX_OFFSET {
            return Err(PagingError::Offset);
        }
        Ok(PageRequest { offset, size })
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            offset: 0,
            size: DEFAULT_PAGE_SIZE,
        }
    }
}

/// One page of results plus the total number of matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub offset: u32,
    pub size: u32,
    pub total: u64,
    pub items: Vec<T>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            offset: self.offset,
            size: self.size,
            total: self.total,
            items: self.items.into_iter().map(f).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_bounds() {
        assert_eq!(PageRequest::new(None, None), Ok(PageRequest::default()));
        assert_eq!(PageRequest::new(Some(5), Some(100)).unwrap().size, 100);
        assert_eq!(PageRequest::new(None, Some(0)), Err(PagingError::Size));
        assert_eq!(PageRequest::new(None, Some(101)), Err(PagingError::Size));
        assert_eq!(
            PageRequest::new(Some(MAX_OFFSET + 1), None),
            Err(PagingError::Offset)
        );
    }
}
