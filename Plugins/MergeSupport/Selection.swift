import LlamaModel

/// Order statistics without sorting.
public enum Selection {
    /// The k-th largest of `values` (k in 1...count), by quickselect with a three-way
    /// partition (so runs of equal values, such as zeros, cost one pass) and pseudo-random
    /// pivots (deterministic: seeded by the count). Reorders `values`.
    public static func kthLargest(_ values: inout [Float], _ k: Int) -> Float {
        precondition(k >= 1 && k <= values.count, "k out of range")
        var rng = SeededGenerator(seed: UInt64(values.count))
        return values.withUnsafeMutableBufferPointer { v in
            let target = k - 1  // index in descending order
            var lo = 0, hi = v.count
            while true {
                if hi - lo == 1 { return v[lo] }
                let pivot = v[lo + Int(rng.next() % UInt64(hi - lo))]
                // [lo, greater) > pivot, [greater, i) == pivot, [less, hi) < pivot
                var greater = lo, i = lo, less = hi
                while i < less {
                    let x = v[i]
                    if x > pivot {
                        v.swapAt(greater, i); greater += 1; i += 1
                    } else if x < pivot {
                        less -= 1; v.swapAt(i, less)
                    } else {
                        i += 1
                    }
                }
                if target < greater { hi = greater } else if target < less { return pivot } else { lo = less }
            }
        }
    }
}
