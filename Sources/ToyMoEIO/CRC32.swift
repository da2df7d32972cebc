// CRC-32 as used by ZIP, gzip and PNG.

/// CRC-32 (IEEE 802.3): reflected polynomial 0xEDB88320, initial value
/// 0xFFFFFFFF, final XOR 0xFFFFFFFF. `CRC32.checksum("123456789")` is
/// 0xCBF43926; the checksum of no bytes is 0.
///
/// Table-driven, one byte per step: fast enough for the array sizes this
/// project writes, and simple enough to check by eye.
public struct CRC32: Sendable, Hashable {
    /// `table[i]` is the CRC register after shifting byte `i` through eight
    /// rounds of the bitwise algorithm.
    static let table: [UInt32] = (0..<256).map { index -> UInt32 in
        var register = UInt32(index)
        for _ in 0..<8 {
            register = (register & 1) != 0 ? (register >> 1) ^ 0xEDB8_8320 : register >> 1
        }
        return register
    }

    /// Internal register (pre-inversion).
    private var register: UInt32 = 0xFFFF_FFFF

    /// Starts a new checksum.
    public init() {}

    /// Feeds more bytes into the checksum.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var crc = register
        CRC32.table.withUnsafeBufferPointer { table in
            for byte in bytes {
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
        }
        register = crc
    }

    /// Feeds more bytes into the checksum.
    public mutating func update<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if handled == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { update($0) }
        }
    }

    /// The checksum of all bytes fed so far.
    public var value: UInt32 { register ^ 0xFFFF_FFFF }

    /// The CRC-32 of a byte collection.
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc = CRC32()
        crc.update(bytes)
        return crc.value
    }
}
