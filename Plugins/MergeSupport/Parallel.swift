import Dispatch

/// Runs independent work items on all cores.
public enum Parallel {
    /// `body(0) ... body(count - 1)`, concurrently, in index order in the result. If any
    /// throws, the error of the lowest index is rethrown after all have run.
    public static func map<T>(_ count: Int, _ body: (Int) throws -> T) throws -> [T] {
        guard count > 0 else { return [] }
        var results = [Result<T, any Error>?](repeating: nil, count: count)
        results.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            DispatchQueue.concurrentPerform(iterations: count) { i in
                base[i] = Result { try body(i) }
            }
        }
        return try results.map { try $0!.get() }
    }
}
