//! The well side of aquifer (being written).
