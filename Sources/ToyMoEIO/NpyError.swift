// Errors raised while building, reading or converting NPY arrays.

/// Everything that can go wrong with an `.npy` array.
///
/// Each message states what was found and what was expected, so that a user
/// holding a bad file can tell what is wrong without reading this code.
public enum NpyError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The input ended before `what` was complete.
    case truncated(what: String, expectedBytes: Int, availableBytes: Int)
    /// The first six bytes are not `\x93NUMPY`.
    case badMagic(found: [UInt8])
    /// The format version is not 1.0, 2.0 or 3.0.
    case unsupportedVersion(major: UInt8, minor: UInt8)
    /// The header dictionary could not be parsed or lacks a required key.
    case malformedHeader(String)
    /// The `descr` entry names a dtype this module does not handle.
    case unsupportedDType(String)
    /// The array is stored in Fortran (column-major) order; only C order is supported.
    case fortranOrder
    /// A shape entry is negative, or the element count overflows `Int`.
    case invalidShape([Int])
    /// The number of data bytes disagrees with shape × item size.
    case dataSizeMismatch(shape: [Int], dtype: NpyDType, expectedBytes: Int, actualBytes: Int)
    /// An initialiser was given a different number of elements than the shape holds.
    case elementCountMismatch(count: Int, shape: [Int], expected: Int)
    /// A value cannot be represented exactly in the requested element type.
    case lossyConversion(from: NpyDType, to: String, index: Int, value: String)
    /// Reading or writing a file failed.
    case io(path: String, message: String)

    public var description: String {
        switch self {
        case let .truncated(what, expected, available):
            return "NPY data truncated: \(what) needs \(expected) bytes but only \(available) are available"
        case let .badMagic(found):
            let shown = found.map { hex($0) }.joined(separator: " ")
            return "not an NPY file: expected magic bytes 0x93 'NUMPY' (93 4E 55 4D 50 59), found [\(shown)]"
        case let .unsupportedVersion(major, minor):
            return "unsupported NPY format version \(major).\(minor); expected 1.0, 2.0 or 3.0"
        case let .malformedHeader(detail):
            return "malformed NPY header: \(detail)"
        case let .unsupportedDType(descr):
            return "unsupported NPY dtype \(descr); expected one of '<f4', '<f8', '<i4', '<i8', '|u1', '|b1' (either byte order)"
        case .fortranOrder:
            return "NPY array is stored with fortran_order True; only C order (fortran_order False) is supported; save with np.ascontiguousarray(a)"
        case let .invalidShape(shape):
            return "invalid NPY shape \(shape): entries must be non-negative and their product must fit in Int"
        case let .dataSizeMismatch(shape, dtype, expected, actual):
            return "NPY data size mismatch: shape \(shape) of \(dtype.descr) needs \(expected) bytes but \(actual) were given"
        case let .elementCountMismatch(count, shape, expected):
            return "element count mismatch: shape \(shape) holds \(expected) elements but \(count) were given"
        case let .lossyConversion(from, to, index, value):
            return "cannot convert \(from.descr) element \(index) (value \(value)) to \(to) exactly"
        case let .io(path, message):
            return "NPY I/O error for \(path): \(message)"
        }
    }
}
