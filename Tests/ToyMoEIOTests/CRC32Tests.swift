import Testing
import ToyMoEIO

@Suite("CRC-32")
struct CRC32Tests {
    @Test("standard check values")
    func checkValues() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
        #expect(CRC32.checksum([0]) == 0xD202_EF8D)
    }

    @Test("incremental updates equal a one-shot checksum")
    func incremental() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var crc = CRC32()
        crc.update(bytes[0..<123])
        crc.update(bytes[123..<500])
        crc.update(bytes[500...])
        #expect(crc.value == CRC32.checksum(bytes))
        #expect(CRC32.checksum(bytes.lazy.map { $0 }) == CRC32.checksum(bytes))
    }
}
