import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SHA-256 digests of bytes and files as lowercase hexadecimal text, the form the catalog uses.
public enum Checksum {
    /// The SHA-256 of `bytes`.
    public static func sha256Hex(_ bytes: some DataProtocol) -> String {
        hex(SHA256.hash(data: bytes))
    }

    /// The SHA-256 of the file at `url`, read in chunks of `chunkSize` bytes.
    public static func sha256Hex(ofFile url: URL, chunkSize: Int = 1 << 20) throws -> String {
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HubError.io(path: path, message: errnoMessage()) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkSize, 1), alignment: 16)
        defer { buffer.deallocate() }
        guard let base = buffer.baseAddress else { return "" }
        var hasher = SHA256()
        while true {
            let got = read(fd, base, buffer.count)
            if got < 0 {
                if errno == EINTR { continue }
                throw HubError.io(path: path, message: errnoMessage())
            }
            if got == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[0 ..< got]))
        }
        return hex(hasher.finalize())
    }

    /// Lowercase hexadecimal text of a digest.
    static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
