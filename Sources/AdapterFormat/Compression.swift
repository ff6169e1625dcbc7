import CZlib

/// zlib-backed CRC-32, deflate and bounded inflate, plus the byte shuffle used before deflate.
enum Compression {
    /// The largest expansion deflate can achieve (about 1032:1, reached by long runs); a
    /// claimed raw size beyond this for a given blob cannot be genuine, so we refuse it before
    /// allocating anything.
    static let maxDeflateRatio = 1032

    /// CRC-32 (the zlib / PNG / gzip polynomial) of `bytes`.
    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { raw in
            var crc = CZlib.crc32(0, nil, 0)
            var offset = 0
            while offset < raw.count {
                // zlib takes a 32-bit length per call.
                let n = min(raw.count - offset, 1 << 30)
                crc = CZlib.crc32(crc, raw.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(n))
                offset += n
            }
            return UInt32(truncatingIfNeeded: crc)
        }
    }

    /// A zlib stream (RFC 1950) of `bytes` at compression `level` (0-9).
    static func deflate(_ bytes: [UInt8], level: Int32 = Z_DEFAULT_COMPRESSION) -> [UInt8] {
        var capacity = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = out.withUnsafeMutableBufferPointer { dst in
            bytes.withUnsafeBufferPointer { src in
                compress2(dst.baseAddress, &capacity, src.baseAddress, uLong(src.count), level)
            }
        }
        // compressBound guarantees room, so failure here means a broken zlib, not bad input.
        precondition(status == Z_OK, "zlib compress2 failed with status \(status)")
        out.removeLast(out.count - Int(capacity))
        return out
    }

    /// Inflates the zlib stream `blob` that must decompress to exactly `rawSize` bytes. Output
    /// never grows past `rawSize`; trailing input, a short stream or a bad checksum all throw.
    static func inflate(_ blob: ArraySlice<UInt8>, rawSize: Int, tensor: String) throws -> [UInt8] {
        func corrupt(_ reason: String) -> AdapterFormatError { .corruptData(tensor: tensor, reason: reason) }
        guard rawSize <= blob.count * maxDeflateRatio + 64 else {
            throw corrupt("raw_size \(rawSize) cannot come from \(blob.count) compressed bytes")
        }
        guard blob.count < Int(UInt32.max) else { throw corrupt("compressed blob of \(blob.count) bytes is too large") }
        // One spare byte lets us notice a stream that decompresses to more than rawSize.
        var out = [UInt8](repeating: 0, count: rawSize + 1)
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw corrupt("zlib could not start")
        }
        defer { inflateEnd(&stream) }
        let (status, produced, leftover) = blob.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                stream.next_in = UnsafeMutablePointer(mutating: src.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(src.count)
                stream.next_out = dst.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(dst.count)
                let status = CZlib.inflate(&stream, Z_FINISH)
                return (status, dst.count - Int(stream.avail_out), Int(stream.avail_in))
            }
        }
        guard produced <= rawSize else { throw corrupt("decompresses to more than raw_size \(rawSize)") }
        switch status {
        case Z_STREAM_END:
            guard produced == rawSize else {
                throw corrupt("decompresses to \(produced) bytes, raw_size says \(rawSize)")
            }
            guard leftover == 0 else { throw corrupt("\(leftover) bytes after the end of the zlib stream") }
        case Z_BUF_ERROR:
            throw corrupt("zlib stream is truncated")
        default:
            let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
            throw corrupt("zlib: \(message)")
        }
        out.removeLast()
        return out
    }

    /// Groups byte k of every `width`-byte element together (all byte 0s, then all byte 1s...).
    /// Exponent bytes of neighbouring floats are similar, so deflate finds far more repeats.
    static func shuffle(_ bytes: [UInt8], width: Int) -> [UInt8] {
        let n = bytes.count / width
        guard width > 1, n * width == bytes.count else { return bytes }
        var out = [UInt8](repeating: 0, count: bytes.count)
        for e in 0..<n { for k in 0..<width { out[k * n + e] = bytes[e * width + k] } }
        return out
    }

    /// The inverse of `shuffle`.
    static func unshuffle(_ bytes: [UInt8], width: Int) -> [UInt8] {
        let n = bytes.count / width
        guard width > 1, n * width == bytes.count else { return bytes }
        var out = [UInt8](repeating: 0, count: bytes.count)
        for e in 0..<n { for k in 0..<width { out[e * width + k] = bytes[k * n + e] } }
        return out
    }
}
