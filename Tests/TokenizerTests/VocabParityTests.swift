import Foundation
import GGUF
import Testing
import Tokenizer

/// llama.cpp's tokenizer test vectors: `models/ggml-vocab-<name>.gguf` (vocabulary only, no
/// tensors) with `.inp` (cases, each followed by a `\n__ggml_vocab_test__\n` line) and `.out`
/// (one line of ids per case). Cases are encoded without BOS/EOS and without parsing control
/// tokens, as `tests/test-tokenizer-0.cpp` does.
///
/// Covered: llama-spm, phi-3 (`llama`); llama-bpe, qwen2, qwen35, gpt-2, mpt, starcoder, refact,
/// command-r, falcon, deepseek-coder (`gpt2`); gemma-4 (`gemma4`).
/// Skipped: bert-bge (`bert`, WordPiece), deepseek-llm (its pre-tokenizer spells out hundreds
/// of letter ranges; not implemented). aquila, baichuan, gpt-neox and nomic-bert-moe have no
/// `.inp`/`.out` vectors.
private let skipped: [String: String] = [
    "bert-bge": "tokenizer model bert (WordPiece) is not supported",
    "deepseek-llm": "pre-tokenizer deepseek-llm is not implemented",
]

private enum Sdist {
    static var directory: String? { ProcessInfo.processInfo.environment["GRAFT_LLAMA_CPP"] }
    static var required: Bool { ProcessInfo.processInfo.environment["GRAFT_REQUIRE_SDIST"] == "1" }
    static var enabled: Bool { directory != nil || required }
}

/// Splits an `.inp` file as llama.cpp does: on `\n__ggml_vocab_test__\n`; the text after the
/// last separator is a case only when non-empty.
func vocabTestCases(_ raw: [UInt8]) -> [[UInt8]] {
    let separator = Array("\n__ggml_vocab_test__\n".utf8)
    var cases: [[UInt8]] = []
    var position = 0
    while position < raw.count {
        var next = position
        var found = false
        while next + separator.count <= raw.count {
            if raw[next] == separator[0] && Array(raw[next..<next + separator.count]) == separator {
                found = true
                break
            }
            next += 1
        }
        if !found {
            cases.append(Array(raw[position...]))
            break
        }
        cases.append(Array(raw[position..<next]))
        position = next + separator.count
    }
    return cases
}

@Suite("llama.cpp vocabulary parity")
struct VocabParityTests {
    @Test("every supported ggml-vocab file encodes its .inp cases to exactly the .out ids", .enabled(if: Sdist.enabled))
    func vocabularies() throws {
        let directory = try #require(Sdist.directory, "GRAFT_LLAMA_CPP is not set (GRAFT_REQUIRE_SDIST=1)")
        let models = URL(fileURLWithPath: directory).appendingPathComponent("models")
        let names = try FileManager.default.contentsOfDirectory(atPath: models.path)
            .filter { $0.hasPrefix("ggml-vocab-") && $0.hasSuffix(".gguf") }
            .filter { FileManager.default.fileExists(atPath: models.appendingPathComponent($0 + ".inp").path) }
            .sorted()
        #expect(names.count >= 10, "expected the llama.cpp vocabulary fixtures in \(models.path)")
        var tested = 0
        for file in names {
            let name = String(file.dropFirst("ggml-vocab-".count).dropLast(".gguf".count))
            if let reason = skipped[name] {
                print("skip \(name): \(reason)")
                continue
            }
            let path = models.appendingPathComponent(file).path
            let tokenizer = try Tokenizer(gguf: GGUFFile(path: path))
            let inputs = vocabTestCases(Array(try Data(contentsOf: URL(fileURLWithPath: path + ".inp"))))
            let outputs = try String(contentsOfFile: path + ".out", encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                .prefix(inputs.count)
            #expect(inputs.count == outputs.count, "\(name): \(inputs.count) cases, \(outputs.count) id lines")
            var passed = 0
            var roundTrips = 0
            for (index, (input, line)) in zip(inputs, outputs).enumerated() {
                let text = String(decoding: input, as: UTF8.self)
                let expected = line.split(separator: " ").compactMap { Int($0) }
                let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: false)
                #expect(ids == expected, "\(name) case \(index) \(text.debugDescription): \(firstDifference(ids, expected))")
                if ids == expected { passed += 1 }
                // Not checked by llama.cpp's test, but every covered vocabulary can spell every case.
                let decoded = tokenizer.decode(ids)
                #expect(decoded == text, "\(name) case \(index) decodes to \(decoded.debugDescription)")
                if decoded == text { roundTrips += 1 }
            }
            print("\(name): \(passed)/\(inputs.count) cases match; decode round-trips \(roundTrips)/\(inputs.count)")
            tested += 1
        }
        #expect(tested >= 10)
    }

    @Test("Phi-3's chat tokens swallow the newline after them", .enabled(if: Sdist.enabled))
    func phi3ChatTokens() throws {
        let directory = try #require(Sdist.directory, "GRAFT_LLAMA_CPP is not set (GRAFT_REQUIRE_SDIST=1)")
        let path = URL(fileURLWithPath: directory).appendingPathComponent("models/ggml-vocab-phi-3.gguf").path
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: path))
        let user = try #require(tokenizer.tokenID("<|user|>")), end = try #require(tokenizer.tokenID("<|end|>"))
        let assistant = try #require(tokenizer.tokenID("<|assistant|>")), hello = try #require(tokenizer.tokenID("▁Hello"))
        #expect(tokenizer.encode("<|user|>\nHello<|end|>\n<|assistant|>\n") == [user, hello, end, assistant])
        let eos = try #require(tokenizer.eosID), bos = try #require(tokenizer.bosID)
        #expect(tokenizer.endOfGenerationIDs.contains(end) && tokenizer.endOfGenerationIDs.contains(eos))
        #expect(tokenizer.encode("Hello", addSpecial: true, parseSpecial: false) == [bos, hello])
    }
}
