//! What the domain writes through the storage interface, one file per resource. Each function
//! runs inside one write job (one transaction): it is applied whole or not at all.
//!
//! These live apart from the types they write so that the storage interface
//! ([`crate::domain::store`]), which names those types, is imported only from here: the
//! arrows run writes → store → types, never back.

pub mod calls;
mod complete;
pub mod costs;
pub mod deletes;
pub mod feedback;
pub mod objects;
pub mod runs;
