// An n-dimensional array in the form numpy stores it: dtype, shape, raw bytes.

import Foundation

/// A C-ordered n-dimensional array as stored in an `.npy` file.
///
/// The value holds the element type, the shape and the raw element bytes in
/// little-endian order, row-major (C) layout. The invariant
/// `data.count == product(shape) * dtype.itemSize` is checked by every
/// initialiser, which throws `NpyError` rather than trapping, so a value of
/// this type is always internally consistent.
///
/// A shape of `[]` is a 0-d (scalar) array holding exactly one element.
public struct NpyArray: Sendable, Hashable {
    /// Element type.
    public let dtype: NpyDType
    /// Extent of each axis, outermost first (C order).
    public let shape: [Int]
    /// Element bytes, little-endian, C order; `count * dtype.itemSize` bytes.
    public let data: [UInt8]

    /// Number of elements: the product of `shape` (1 for a 0-d array).
    public var count: Int { data.count / dtype.itemSize }

    /// Creates an array from raw little-endian bytes.
    ///
    /// - Throws: `NpyError.invalidShape` for negative or overflowing shapes,
    ///   `NpyError.dataSizeMismatch` when `data.count` is not
    ///   `product(shape) * dtype.itemSize`.
    public init(dtype: NpyDType, shape: [Int], data: [UInt8]) throws {
        let elements = try NpyArray.elementCount(of: shape)
        let (expected, overflow) = elements.multipliedReportingOverflow(by: dtype.itemSize)
        guard !overflow else { throw NpyError.invalidShape(shape) }
        guard data.count == expected else {
            throw NpyError.dataSizeMismatch(shape: shape, dtype: dtype, expectedBytes: expected, actualBytes: data.count)
        }
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    /// Number of elements an array of `shape` holds (1 for `[]`).
    ///
    /// - Throws: `NpyError.invalidShape` if an entry is negative or the
    ///   product overflows `Int`.
    public static func elementCount(of shape: [Int]) throws -> Int {
        var product = 1
        for extent in shape {
            guard extent >= 0 else { throw NpyError.invalidShape(shape) }
            let (next, overflow) = product.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw NpyError.invalidShape(shape) }
            product = next
        }
        return product
    }

    /// Resolves an optional shape (nil means 1-D of `count`) and checks it.
    private static func checkedShape(_ shape: [Int]?, count: Int) throws -> [Int] {
        let resolved = shape ?? [count]
        let expected = try elementCount(of: resolved)
        guard expected == count else {
            throw NpyError.elementCountMismatch(count: count, shape: resolved, expected: expected)
        }
        return resolved
    }

    /// Creates a `float32` array. `shape` defaults to `[values.count]`.
    /// - Throws: `NpyError.elementCountMismatch` if the shape does not hold `values.count` elements.
    public init(float32 values: [Float], shape: [Int]? = nil) throws {
        let resolved = try NpyArray.checkedShape(shape, count: values.count)
        self.init(unchecked: .float32, shape: resolved, data: littleEndianBytes(values.map { $0.bitPattern }))
    }

    /// Creates a `float64` array. `shape` defaults to `[values.count]`.
    /// - Throws: `NpyError.elementCountMismatch` if the shape does not hold `values.count` elements.
    public init(float64 values: [Double], shape: [Int]? = nil) throws {
        let resolved = try NpyArray.checkedShape(shape, count: values.count)
        self.init(unchecked: .float64, shape: resolved, data: littleEndianBytes(values.map { $0.bitPattern }))
    }

    /// Creates an `int32` array. `shape` defaults to `[values.count]`.
    /// - Throws: `NpyError.elementCountMismatch` if the shape does not hold `values.count` elements.
    public init(int32 values: [Int32], shape: [Int]? = nil) throws {
        let resolved = try NpyArray.checkedShape(shape, count: values.count)
        self.init(unchecked: .int32, shape: resolved, data: littleEndianBytes(values))
    }

    /// Creates an `int64` array. `shape` defaults to `[values.count]`.
    /// - Throws: `NpyError.elementCountMismatch` if the shape does not hold `values.count` elements.
    public init(int64 values: [Int64], shape: [Int]? = nil) throws {
        let resolved = try NpyArray.checkedShape(shape, count: values.count)
        self.init(unchecked: .int64, shape: resolved, data: littleEndianBytes(values))
    }

    /// Creates a `uint8` array. `shape` defaults to `[values.count]`.
    /// - Throws: `NpyError.elementCountMismatch` if the shape does not hold `values.count` elements.
    public init(uint8 values: [UInt8], shape: [Int]? = nil) throws {
        let resolved = try NpyArray.checkedShape(shape, count: values.count)
        self.init(unchecked: .uint8, shape: resolved, data: values)
    }

    /// Creates a `bool` array stored as bytes 0/1. `shape` defaults to `[values.count]`.
    /// - Throws: `NpyError.elementCountMismatch` if the shape does not hold `values.count` elements.
    public init(bool values: [Bool], shape: [Int]? = nil) throws {
        let resolved = try NpyArray.checkedShape(shape, count: values.count)
        self.init(unchecked: .bool, shape: resolved, data: values.map { $0 ? 1 : 0 })
    }

    /// Used only after the caller has validated the invariant.
    init(unchecked dtype: NpyDType, shape: [Int], data: [UInt8]) {
        self.dtype = dtype
        self.shape = shape
        self.data = data
    }

    // MARK: - Typed access

    /// The elements as `Float`, converting from any dtype (`float64` is
    /// rounded to nearest, integers may round, bool gives 0/1).
    public func asFloat32() throws -> [Float] {
        switch dtype {
        case .float32: return decode(UInt32.self).map { Float(bitPattern: $0) }
        case .float64: return decode(UInt64.self).map { Float(Double(bitPattern: $0)) }
        case .int32: return decode(Int32.self).map { Float($0) }
        case .int64: return decode(Int64.self).map { Float($0) }
        case .uint8, .bool: return data.map { Float($0) }
        }
    }

    /// The elements as `Double`, converting from any dtype (exact except for
    /// `int64` values beyond 2^53, which round to nearest).
    public func asFloat64() throws -> [Double] {
        switch dtype {
        case .float32: return decode(UInt32.self).map { Double(Float(bitPattern: $0)) }
        case .float64: return decode(UInt64.self).map { Double(bitPattern: $0) }
        case .int32: return decode(Int32.self).map { Double($0) }
        case .int64: return decode(Int64.self).map { Double($0) }
        case .uint8, .bool: return data.map { Double($0) }
        }
    }

    /// The elements as `Int64`. Floating-point values must be integral and in range.
    /// - Throws: `NpyError.lossyConversion` naming the first offending element.
    public func asInt64() throws -> [Int64] {
        switch dtype {
        case .int64: return decode(Int64.self)
        case .int32: return decode(Int32.self).map { Int64($0) }
        case .uint8, .bool: return data.map { Int64($0) }
        case .float32, .float64: return try exactIntegers(Int64.self, target: "int64")
        }
    }

    /// The elements as `Int32`. Values must be integral and fit in 32 bits.
    /// - Throws: `NpyError.lossyConversion` naming the first offending element.
    public func asInt32() throws -> [Int32] {
        switch dtype {
        case .int32: return decode(Int32.self)
        case .int64: return try convertExactly(decode(Int64.self), target: "int32") { Int32(exactly: $0) }
        case .uint8, .bool: return data.map { Int32($0) }
        case .float32, .float64: return try exactIntegers(Int32.self, target: "int32")
        }
    }

    /// The elements as `UInt8`. Values must be integral and in 0...255.
    /// - Throws: `NpyError.lossyConversion` naming the first offending element.
    public func asUInt8() throws -> [UInt8] {
        switch dtype {
        case .uint8, .bool: return data
        case .int32: return try convertExactly(decode(Int32.self), target: "uint8") { UInt8(exactly: $0) }
        case .int64: return try convertExactly(decode(Int64.self), target: "uint8") { UInt8(exactly: $0) }
        case .float32, .float64: return try exactIntegers(UInt8.self, target: "uint8")
        }
    }

    /// The elements as `Bool`, with numpy's `astype(bool)` meaning: any
    /// non-zero value (including NaN) is true. Never throws for a valid array;
    /// declared `throws` for symmetry with the other accessors.
    public func asBool() throws -> [Bool] {
        switch dtype {
        case .uint8, .bool: return data.map { $0 != 0 }
        case .int32: return decode(Int32.self).map { $0 != 0 }
        case .int64: return decode(Int64.self).map { $0 != 0 }
        case .float32: return decode(UInt32.self).map { Float(bitPattern: $0) != 0 }
        case .float64: return decode(UInt64.self).map { Double(bitPattern: $0) != 0 }
        }
    }

    /// Decodes the little-endian element bytes as integers of type `T`.
    /// Only called when `T`'s size equals `dtype.itemSize`.
    private func decode<T: FixedWidthInteger>(_: T.Type) -> [T] {
        let stride = MemoryLayout<T>.size
        let n = data.count / stride
        var values = [T](repeating: 0, count: n)
        values.withUnsafeMutableBytes { destination in
            data.withUnsafeBytes { source in
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<(n * stride)]))
            }
        }
        #if _endian(big)
        return values.map { T(littleEndian: $0) }
        #else
        return values
        #endif
    }

    private func convertExactly<S, T>(_ source: [S], target: String, _ convert: (S) -> T?) throws -> [T] {
        var result: [T] = []
        result.reserveCapacity(source.count)
        for (index, value) in source.enumerated() {
            guard let converted = convert(value) else {
                throw NpyError.lossyConversion(from: dtype, to: target, index: index, value: "\(value)")
            }
            result.append(converted)
        }
        return result
    }

    private func exactIntegers<T: FixedWidthInteger>(_: T.Type, target: String) throws -> [T] {
        try convertExactly(asFloat64(), target: target) { T(exactly: $0) }
    }
}

/// Serialises integers as little-endian bytes (a plain copy on little-endian hosts).
func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    #if _endian(big)
    let ordered = values.map { $0.littleEndian }
    #else
    let ordered = values
    #endif
    return ordered.withUnsafeBytes { Array($0) }
}
