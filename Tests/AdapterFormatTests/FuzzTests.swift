import Foundation
import LlamaModel
import Testing
@testable import AdapterFormat
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("mutated files")
struct FuzzTests {
    /// Peak resident memory of this process in bytes.
    private func peakResidentBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
        #endif
    }

    /// One random change: bit flips, overwritten bytes, truncation, a new header length, or an
    /// edit inside the JSON header that keeps the length field consistent (so parsing goes deep).
    private func mutate(_ bytes: inout [UInt8], rng: inout SeededGenerator) {
        let headerEnd = bytes.count >= 8 ? min(bytes.count, 8 + Int(bytes[0]) + Int(bytes[1]) << 8) : bytes.count
        switch Int.random(in: 0..<7, using: &rng) {
        case 0 where !bytes.isEmpty:
            bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
        case 1 where !bytes.isEmpty:
            bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        case 2:
            bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng))
        case 3 where bytes.count >= 8:
            let choices: [UInt64] = [UInt64.random(in: 0...UInt64.max, using: &rng), UInt64(bytes.count),
                                     UInt64(Int.random(in: 0...bytes.count, using: &rng)), 1 << 40]
            bytes.replaceSubrange(0..<8, with: withHeaderLength(choices.randomElement(using: &rng)!))
        case 4 where headerEnd > 9, 5 where headerEnd > 9:
            // Replace a character of the header with a digit or JSON punctuation, or insert one.
            let alphabet = Array("0123456789-.e{}[]\":, ".utf8)
            let at = Int.random(in: 8..<headerEnd, using: &rng)
            let c = alphabet.randomElement(using: &rng)!
            if Bool.random(using: &rng) {
                bytes[at] = c
            } else {
                bytes.insert(c, at: at)
                let n = UInt64(headerEnd - 8 + 1)
                bytes.replaceSubrange(0..<8, with: withHeaderLength(n))
            }
        default:
            // Splice: copy a run of bytes over another place.
            guard bytes.count > 16 else { return }
            let length = Int.random(in: 1...8, using: &rng)
            let from = Int.random(in: 0..<(bytes.count - length), using: &rng)
            let to = Int.random(in: 0..<(bytes.count - length), using: &rng)
            bytes.replaceSubrange(to..<(to + length), with: bytes[from..<(from + length)])
        }
    }

    @Test("thousands of seeded mutations of a valid file decode or throw AdapterFormatError, never crash or balloon")
    func mutations() throws {
        let adapter = syntheticAdapter(config: tinyConfig, rank: 2, projections: [.query, .down])
        let originals = try [GraftFile.encode(adapter, info: sampleInfo, dtype: .bf16, minimumSaving: 0),
                             GraftFile.encode(adapter, info: sampleInfo, dtype: .f32, compress: false)]
        var rng = SeededGenerator(seed: 2024)
        var outcomes: [String: Int] = [:]
        let peakBefore = peakResidentBytes()
        for iteration in 0..<3000 {
            var bytes = originals[iteration % 2]
            for _ in 0..<Int.random(in: 1...3, using: &rng) { mutate(&bytes, rng: &rng) }
            for (name, decode) in [("decode", { _ = try GraftFile.decode(bytes) } as () throws -> Void),
                                   ("summary", { _ = try GraftFile.summary(bytes) }),
                                   ("safetensors", { _ = try SafeTensors.decode(bytes) })] {
                do {
                    try decode()
                    if name == "decode" { outcomes["success", default: 0] += 1 }
                } catch let error as AdapterFormatError {
                    if name == "decode" { outcomes[Mirror(reflecting: error).children.first?.label ?? "\(error)", default: 0] += 1 }
                } catch {
                    Issue.record("iteration \(iteration): \(name) threw a foreign error \(error)")
                }
            }
        }
        // The mutations must reach past the header: checksums and zlib must both be exercised.
        #expect(outcomes["checksumMismatch"] != nil && outcomes["corruptData"] != nil, "outcomes: \(outcomes)")
        #expect(outcomes.count >= 6, "outcomes: \(outcomes)")
        #expect(peakResidentBytes() - peakBefore < 512 << 20)
    }
}
