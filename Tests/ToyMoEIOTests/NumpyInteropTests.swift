// Checks against the real numpy, when python3 can import it.

import Foundation
import Testing
import ToyMoEIO

@Suite("numpy interop", .enabled(if: numpyAvailable, "python3 with numpy not available; interop tests skipped"))
struct NumpyInteropTests {
    static let shapes: [[Int]] = [[], [0], [5], [2, 3], [2, 3, 4]]

    @Test("numpy loads Swift-written .npy and .npz files; np.save would write the same bytes")
    func swiftWritesNumpyReads() throws {
        let directory = try makeTemporaryDirectory("toymoe-interop")
        defer { try? FileManager.default.removeItem(at: directory) }

        var written: [String: NpyArray] = [:]
        for dtype in NpyDType.allCases {
            for shape in Self.shapes {
                let name = "\(dtype.numpyName)_\(shape.map(String.init).joined(separator: "x")).npy"
                let array = try sampleArray(dtype, shape: shape)
                try array.write(to: directory.appendingPathComponent(name))
                written[name] = array
            }
        }
        // Shapes whose header text lands on either side of a 64-byte boundary,
        // so that the exact padding rule (not just the total) is compared.
        var boundaryShapes: [[Int]] = (1...16).map { Array(repeating: 1, count: $0) }
        // The growth padding keeps the first axis at a fixed width, so vary
        // the number of axes and the width of the last one to sweep the
        // header length byte by byte across a 64-byte boundary.
        for rank in 2...16 {
            for extent in [1, 10, 100, 1000] {
                boundaryShapes.append([0] + Array(repeating: 1, count: rank - 2) + [extent])
            }
        }
        boundaryShapes += [[123_456_789, 0], [12_345_678_901_234_567, 0, 9]]
        for (index, shape) in boundaryShapes.enumerated() {
            let name = "boundary_\(index).npy"
            let array = try sampleArray(.uint8, shape: shape)
            try array.write(to: directory.appendingPathComponent(name))
            written[name] = array
        }
        let members: [(String, NpyArray)] = [
            ("zeta", try sampleArray(.float32, shape: [2, 3])),
            ("alpha", try sampleArray(.bool, shape: [4])),
            ("mid", try sampleArray(.int64, shape: [])),
            ("u", try sampleArray(.uint8, shape: [3])),
        ]
        try Npz.write(members, to: directory.appendingPathComponent("archive.npz"))

        let script = """
            import sys, os, io, json, glob, zipfile
            import numpy as np
            d = sys.argv[1]
            out = {}
            for f in sorted(glob.glob(os.path.join(d, '*.npy'))):
                a = np.load(f)
                buf = io.BytesIO()
                np.save(buf, a)
                with open(f, 'rb') as fh:
                    raw = fh.read()
                out[os.path.basename(f)] = {'dtype': a.dtype.str, 'shape': list(a.shape),
                                            'values': a.ravel().tolist(), 'identical': buf.getvalue() == raw}
            with zipfile.ZipFile(os.path.join(d, 'archive.npz')) as zf:
                zip_ok = zf.testzip() is None and all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
            with np.load(os.path.join(d, 'archive.npz')) as z:
                out['archive.npz'] = {'files': list(z.files), 'zip_ok': zip_ok, 'members': {
                    k: {'dtype': z[k].dtype.str, 'shape': list(z[k].shape), 'values': z[k].ravel().tolist()}
                    for k in z.files}}
            print(json.dumps(out))
            """
        let result = try runPython(script, arguments: [directory.path], in: directory)
        try #require(result.status == 0, "python failed: \(result.stderr)")
        let report = try JSONValue(parsing: result.stdout)

        for (name, array) in written {
            let entry = try #require(report[name], "numpy did not load \(name)")
            #expect(entry["identical"] == .bool(true), "np.save writes different bytes for \(name)")
            try check(entry, against: array, label: name)
        }
        let archive = try #require(report["archive.npz"])
        #expect(archive["files"] == .array(["zeta", "alpha", "mid", "u"]))
        #expect(archive["zip_ok"] == .bool(true), "Python's zipfile rejects the archive or its timestamps")
        for (name, array) in members {
            try check(try #require(archive["members"]?[name]), against: array, label: "archive.npz/\(name)")
        }
    }

    /// Compares numpy's description of an array (dtype, shape, flat values) with ours.
    func check(_ entry: JSONValue, against array: NpyArray, label: String) throws {
        #expect(entry["dtype"] == .string(array.dtype.descr), "\(label)")
        #expect(entry["shape"] == .array(array.shape.map { .int($0) }), "\(label)")
        let values = try #require(entry["values"]?.arrayValue, "\(label)")
        switch array.dtype {
        case .bool:
            #expect(values.map(\.boolValue) == (try array.asBool()).map { $0 }, "\(label)")
        case .float32, .float64:
            #expect(values.map(\.doubleValue) == (try array.asFloat64()).map { $0 }, "\(label)")
        case .int32, .int64, .uint8:
            #expect(values.map(\.intValue) == (try array.asInt64()).map { Int($0) }, "\(label)")
        }
    }

    @Test("Swift reads files written by np.save and np.savez")
    func numpyWritesSwiftReads() throws {
        let directory = try makeTemporaryDirectory("toymoe-interop")
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = """
            import sys, os
            import numpy as np
            os.chdir(sys.argv[1])
            np.save('be_f8.npy', np.arange(6, dtype='>f8').reshape(2, 3) / 4)
            np.save('be_i4.npy', np.array([-1, 2, 300000], dtype='>i4'))
            np.save('bool.npy', np.array([[True, False, True], [False, False, True]]))
            np.save('scalar.npy', np.array(3.5, dtype=np.float32))
            np.save('u1.npy', np.arange(250, 256, dtype=np.uint8))
            np.save('i8.npy', np.array([-(2**62), 0, 2**62], dtype=np.int64))
            np.save('f4_3d.npy', (np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5) / 8)
            np.save('empty.npy', np.zeros((0, 3), dtype=np.float64))
            np.save('fortran.npy', np.asfortranarray(np.arange(6.0).reshape(2, 3)))
            np.savez('p.npz', zeta=np.arange(3, dtype=np.int32), alpha=np.array(True), mid=np.ones((2, 2), dtype=np.float32))
            np.savez('positional.npz', np.arange(2, dtype=np.int64), np.arange(3, dtype=np.int64))
            np.savez_compressed('c.npz', x=np.arange(10))
            """
        let result = try runPython(script, arguments: [directory.path], in: directory)
        try #require(result.status == 0, "python failed: \(result.stderr)")
        func load(_ name: String) throws -> NpyArray { try NpyArray(contentsOf: directory.appendingPathComponent(name)) }

        let beF8 = try load("be_f8.npy")
        #expect(beF8.dtype == .float64 && beF8.shape == [2, 3])
        #expect(try beF8.asFloat64() == [0, 0.25, 0.5, 0.75, 1, 1.25])

        let beI4 = try load("be_i4.npy")
        #expect(beI4.dtype == .int32 && beI4.shape == [3])
        #expect(try beI4.asInt32() == [-1, 2, 300_000])

        let flags = try load("bool.npy")
        #expect(flags.dtype == .bool && flags.shape == [2, 3])
        #expect(try flags.asBool() == [true, false, true, false, false, true])

        let scalar = try load("scalar.npy")
        #expect(scalar.dtype == .float32 && scalar.shape == [])
        #expect(try scalar.asFloat32() == [3.5])

        #expect(try load("u1.npy") == NpyArray(uint8: [250, 251, 252, 253, 254, 255]))
        #expect(try load("i8.npy").asInt64() == [-(1 << 62), 0, 1 << 62])
        let cube = try load("f4_3d.npy")
        #expect(cube.shape == [2, 3, 4])
        #expect(try cube.asFloat32() == (0..<24).map { (Float($0) - 5) / 8 })
        let empty = try load("empty.npy")
        #expect(empty.shape == [0, 3] && empty.count == 0 && empty.dtype == .float64)

        expectError(NpyError.self, { _ = try load("fortran.npy") }) { $0 == .fortranOrder }

        let archive = try Npz.read(contentsOf: directory.appendingPathComponent("p.npz"))
        #expect(archive.names == ["zeta", "alpha", "mid"])
        #expect(try archive.array(named: "zeta") == NpyArray(int32: [0, 1, 2]))
        #expect(try archive.array(named: "alpha") == NpyArray(bool: [true], shape: []))
        #expect(try archive.array(named: "mid") == NpyArray(float32: [1, 1, 1, 1], shape: [2, 2]))

        let positional = try Npz.read(contentsOf: directory.appendingPathComponent("positional.npz"))
        #expect(positional.names == ["arr_0", "arr_1"])
        #expect(try positional.array(named: "arr_1").asInt64() == [0, 1, 2])

        expectError(NpzError.self, { _ = try Npz.read(contentsOf: directory.appendingPathComponent("c.npz")) }) {
            $0 == .compressedMember("x.npy") && $0.description.contains("compressed .npz not supported")
        }
    }
}
