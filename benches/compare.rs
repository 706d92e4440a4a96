//! Side-by-side benchmark of weft and the reference server (placeholder; see docs/benchmarks.md).

fn main() {
    println!("compare: not yet implemented");
}
