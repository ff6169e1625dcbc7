import Foundation

/// Global functions: jinja2's `range`, `namespace`, `dict`, and Hugging Face's `raise_exception`
/// and `strftime_now`.
enum Builtins {
    static let names: Set<String> = ["range", "namespace", "dict", "raise_exception", "strftime_now"]

    static func call(_ name: String, _ args: [Value], _ kwargs: [(String, Value)], _ interpreter: Interpreter) throws -> Value {
        switch name {
        case "range":
            guard (1...3).contains(args.count), let ints = Optional(args.compactMap(Arithmetic.integer)), ints.count == args.count else {
                throw EvalError("range() expects 1 to 3 integer arguments")
            }
            let start = ints.count == 1 ? 0 : ints[0]
            let stop = ints.count == 1 ? ints[0] : ints[1]
            let step = ints.count == 3 ? ints[2] : 1
            guard step != 0 else { throw EvalError("range() arg 3 must not be zero") }
            let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
            guard count <= interpreter.limits.maxRange else {
                throw EvalError("range() of \(count) elements exceeds the limit of \(interpreter.limits.maxRange)", kind: .limit)
            }
            return .list(stride(from: start, to: stop, by: step).map { .int($0) })
        case "namespace":
            let ns = Namespace()
            if case .dict(let d)? = args.first {
                for (k, v) in d.entries { ns.attributes[k] = v }
            }
            for (k, v) in kwargs { ns.attributes[k] = v }
            return .namespace(ns)
        case "dict":
            var d = Dict()
            if case .dict(let initial)? = args.first { d = initial }
            for (k, v) in kwargs { d[k] = v }
            return .dict(d)
        case "raise_exception":
            throw EvalError(args.first.map(Format.str) ?? "", kind: .raised)
        case "strftime_now":
            guard case .string(let format)? = args.first else { throw EvalError("strftime_now() expects a format string") }
            return .string(strftime(format, interpreter.now, interpreter.timeZone))
        default:
            throw EvalError("'\(name)' is undefined")
        }
    }

    private static let months = ["January", "February", "March", "April", "May", "June", "July", "August",
                                 "September", "October", "November", "December"]
    private static let weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// C `strftime` in the C locale for the common directives (glibc's `%-d` style unpadded too).
    static func strftime(_ format: String, _ date: Date, _ zone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let year = c.year ?? 1970, month = c.month ?? 1, day = c.day ?? 1
        let hour = c.hour ?? 0, minute = c.minute ?? 0, second = c.second ?? 0, weekday = (c.weekday ?? 1) - 1
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        func pad(_ v: Int, _ width: Int, _ unpadded: Bool) -> String {
            let s = String(v)
            return unpadded ? s : String(repeating: "0", count: max(0, width - s.count)) + s
        }
        var out = ""
        var chars = Array(format)[...]
        while let ch = chars.popFirst() {
            guard ch == "%", var d = chars.popFirst() else { out.append(ch); continue }
            var unpadded = false
            if d == "-", let next = chars.popFirst() { unpadded = true; d = next }
            switch d {
            case "Y": out += String(year)
            case "y": out += pad(year % 100, 2, unpadded)
            case "m": out += pad(month, 2, unpadded)
            case "d": out += pad(day, 2, unpadded)
            case "e": out += unpadded ? String(day) : (day < 10 ? " \(day)" : String(day))
            case "H": out += pad(hour, 2, unpadded)
            case "I": out += pad(hour % 12 == 0 ? 12 : hour % 12, 2, unpadded)
            case "M": out += pad(minute, 2, unpadded)
            case "S": out += pad(second, 2, unpadded)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "B": out += months[month - 1]
            case "b", "h": out += String(months[month - 1].prefix(3))
            case "A": out += weekdays[weekday]
            case "a": out += String(weekdays[weekday].prefix(3))
            case "j": out += pad(dayOfYear, 3, unpadded)
            case "F": out += "\(year)-\(pad(month, 2, false))-\(pad(day, 2, false))"
            case "%": out += "%"
            default: out += "%\(unpadded ? "-" : "")\(d)"
            }
        }
        return out
    }
}
