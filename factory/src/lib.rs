//! The factory side of aquifer (being written).
