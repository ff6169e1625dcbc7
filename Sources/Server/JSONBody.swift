import Foundation
import Hummingbird
import NIOCore

/// A JSON object from a request body, with typed accessors whose errors name the field and
/// what it should have been (400, `param` set).
struct JSONBody: @unchecked Sendable {  // holds only JSONSerialization values, never mutated
    let values: [String: Any]
    let path: String

    init(_ values: [String: Any], path: String = "") { self.values = values; self.path = path }

    /// Parses `bytes`; an empty body is an empty object (the SDKs send none on cancel/delete).
    static func parse(_ bytes: [UInt8]) throws -> JSONBody {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return JSONBody([:]) }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw APIError.badRequest("the request body is not valid UTF-8")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            throw APIError.badRequest("the request body is not valid JSON: \(reason)")
        }
        guard let dict = object as? [String: Any] else { throw APIError.badRequest("the request body must be a JSON object") }
        return JSONBody(dict)
    }

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func has(_ key: String) -> Bool { values[key] != nil && !(values[key] is NSNull) }

    private func value(_ key: String) -> Any? {
        guard let v = values[key], !(v is NSNull) else { return nil }
        return v
    }

    private func wrong(_ key: String, _ expected: String) -> APIError {
        APIError.badRequest("'\(name(key))' must be \(expected)", param: name(key))
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v as? String else { throw wrong(key, "a string") }
        return s
    }

    func requiredString(_ key: String) throws -> String {
        guard let s = try string(key) else {
            throw APIError.badRequest("missing required field '\(name(key))'", param: name(key))
        }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard let b = v as? Bool, !(v is String) else { throw wrong(key, "true or false") }
        return b
    }

    func number(_ key: String, in range: ClosedRange<Double>) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard !(v is String), let n = (v as? NSNumber)?.doubleValue, n.isFinite else { throw wrong(key, "a number") }
        guard range.contains(n) else { throw wrong(key, "between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound))") }
        return n
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard !(v is String), let n = (v as? NSNumber)?.doubleValue, n.isFinite, n == n.rounded(), abs(n) < 9e15 else {
            throw wrong(key, "an integer")
        }
        guard range.contains(Int(n)) else { throw wrong(key, "an integer from \(range.lowerBound) to \(range.upperBound)") }
        return Int(n)
    }

    func object(_ key: String) throws -> JSONBody? {
        guard let v = value(key) else { return nil }
        guard let d = v as? [String: Any] else { throw wrong(key, "an object") }
        return JSONBody(d, path: name(key))
    }

    func array(_ key: String) throws -> [Any]? {
        guard let v = value(key) else { return nil }
        guard let a = v as? [Any] else { throw wrong(key, "an array") }
        return a
    }

    /// A string or an array of strings (`stop`).
    func strings(_ key: String, max: Int) throws -> [String] {
        guard let v = value(key) else { return [] }
        if let s = v as? String { return [s] }
        guard let a = v as? [Any], a.count <= max, let ss = a as? [String] else {
            throw wrong(key, "a string or an array of at most \(max) strings")
        }
        return ss
    }

    private static func format(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }
}

extension Request {
    /// The whole body, refused with 413 when Content-Length (or the bytes received) exceed `limit`.
    func readBody(limit: Int) async throws -> [UInt8] {
        if let declared = headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw APIError(.contentTooLarge, "the request body has \(declared) bytes, over the limit of \(limit)",
                           code: "request_too_large")
        }
        do {
            let buffer = try await body.collect(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "the request body is over the limit of \(limit) bytes", code: "request_too_large")
        }
    }
}
