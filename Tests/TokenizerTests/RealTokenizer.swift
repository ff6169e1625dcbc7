import GGUF
import TestSupport
import Tokenizer

/// The SmolLM2 tokenizer used by the parity tests, read from the real model's GGUF metadata,
/// or nil when the model has not been pulled.
func realTokenizer() throws -> Tokenizer? {
    guard let path = TestData.realModelPath else { return nil }
    return try Tokenizer(gguf: GGUFFile(path: path))
}
