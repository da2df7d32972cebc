// The element types understood by the NPY reader and writer.

/// Element type of an `NpyArray`.
///
/// The raw value is the numpy `descr` string that the writer emits. Arrays
/// are always held in little-endian order in memory; the reader converts
/// big-endian (`'>'`) files on load. One-byte types use numpy's `'|'`
/// ("byte order not applicable") prefix.
public enum NpyDType: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// IEEE-754 binary32, numpy `float32`.
    case float32 = "<f4"
    /// IEEE-754 binary64, numpy `float64`.
    case float64 = "<f8"
    /// Two's-complement 32-bit integer, numpy `int32`.
    case int32 = "<i4"
    /// Two's-complement 64-bit integer, numpy `int64`.
    case int64 = "<i8"
    /// Unsigned byte, numpy `uint8`.
    case uint8 = "|u1"
    /// Boolean stored as one byte (0 or 1), numpy `bool`.
    case bool = "|b1"

    /// The `descr` string written into the NPY header.
    public var descr: String { rawValue }

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .float64, .int64: return 8
        case .uint8, .bool: return 1
        }
    }

    /// The numpy name of the type (`"float32"`, `"bool"`, ...).
    public var numpyName: String {
        switch self {
        case .float32: return "float32"
        case .float64: return "float64"
        case .int32: return "int32"
        case .int64: return "int64"
        case .uint8: return "uint8"
        case .bool: return "bool"
        }
    }

    public var description: String { numpyName }

    /// Parses a numpy `descr` string such as `'<f4'`, `'>i8'` or `'|b1'`.
    ///
    /// The first character is the byte order: `'<'` little, `'>'` big,
    /// `'='` native, `'|'` not applicable (accepted only for one-byte types,
    /// although any order character is accepted for those since it has no
    /// effect). Returns nil for anything else, including structured dtypes.
    static func parse(descr: String) -> (dtype: NpyDType, bigEndian: Bool)? {
        let scalars = Array(descr.unicodeScalars)
        guard scalars.count == 3 else { return nil }
        let order = scalars[0]
        let code = String(String.UnicodeScalarView(scalars[1...]))
        let dtype: NpyDType
        switch code {
        case "f4": dtype = .float32
        case "f8": dtype = .float64
        case "i4": dtype = .int32
        case "i8": dtype = .int64
        case "u1": dtype = .uint8
        case "b1": dtype = .bool
        default: return nil
        }
        if dtype.itemSize == 1 {
            // Byte order is meaningless for single bytes; numpy writes '|'.
            guard "<>|=".unicodeScalars.contains(order) else { return nil }
            return (dtype, false)
        }
        switch order {
        case "<": return (dtype, false)
        case ">": return (dtype, true)
        case "=":
            #if _endian(big)
            return (dtype, true)
            #else
            return (dtype, false)
            #endif
        default: return nil
        }
    }
}
