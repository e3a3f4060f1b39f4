//! bmat (being written).

fn main() {}
