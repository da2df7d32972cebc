import Foundation
import Testing
import ToyMoEIO

@Suite("JSON")
struct JSONTests {
    let sample: JSONValue = [
        "name": "toy \"moe\"",
        "count": 3,
        "ratio": 0.1,
        "flags": [true, false, nil],
        "nested": ["empty_array": [], "empty_object": [:], "big": 1e300, "negative": -2.5e-8],
        "unicode": "é😀\u{1}",
    ]

    @Test("pretty output is exactly the documented layout, in insertion order")
    func prettyLayout() throws {
        let text = try sample.prettyPrinted()
        let expected = """
            {
              "name": "toy \\"moe\\"",
              "count": 3,
              "ratio": 0.1,
              "flags": [
                true,
                false,
                null
              ],
              "nested": {
                "empty_array": [],
                "empty_object": {},
                "big": 1e+300,
                "negative": -2.5e-08
              },
              "unicode": "é😀\\u0001"
            }
            """
        #expect(text == expected)
        #expect(try sample.compactString() == #"{"name":"toy \"moe\"","count":3,"ratio":0.1,"flags":[true,false,null],"nested":{"empty_array":[],"empty_object":{},"big":1e+300,"negative":-2.5e-08},"unicode":"é😀\u0001"}"#)
        let sorted = try JSONValue.object(["b": 1, "a": 2]).serialized(options: JSONWriteOptions(pretty: false, sortKeys: true))
        #expect(sorted == #"{"a":2,"b":1}"#)
    }

    @Test("round trip through text preserves values, cases and key order")
    func roundTrip() throws {
        for options in [JSONWriteOptions.pretty, .compact, JSONWriteOptions(escapeNonASCII: true)] {
            let text = try sample.serialized(options: options)
            let back = try JSONValue(parsing: text)
            #expect(back == sample)
            #expect(try back.serialized(options: options) == text)
        }
        #expect(try sample.prettyPrinted() == sample.prettyPrinted())
    }

    @Test("doubles print in shortest form and parse back bit for bit")
    func doubleRoundTrip() throws {
        let values: [Double] = [0, -0.0, 0.1, 1.0 / 3, 1e-300, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 123456789.125, 1e16, -7, 2.5e-8]
        for value in values {
            let text = try JSONValue.number(value).compactString()
            guard case let .number(back) = try JSONValue(parsing: text) else {
                Issue.record("\(text) did not parse as a floating-point number")
                continue
            }
            #expect(back.bitPattern == value.bitPattern, "\(text)")
        }
        #expect(try JSONValue.number(1).compactString() == "1.0")
        #expect(try JSONValue.int(1).compactString() == "1")
        #expect(try JSONValue(parsing: "1") == .int(1))
        #expect(try JSONValue(parsing: "-12") == .int(-12))
        #expect(try JSONValue(parsing: "1.5E2") == .number(150))
        #expect(try JSONValue(parsing: "99999999999999999999") == .number(1e20))
    }

    @Test("strings are escaped per RFC 8259")
    func escaping() throws {
        let text = "q\"b\\s/\u{8}\u{C}\n\r\t\u{0}\u{1F}\u{7F}é€😀"
        #expect(try JSONValue.string(text).compactString() == #""q\"b\\s/\b\f\n\r\t\u0000\u001f"# + "\u{7F}é€😀\"")
        #expect(try JSONValue.string(text).serialized(options: JSONWriteOptions(pretty: false, escapeNonASCII: true))
            == #""q\"b\\s/\b\f\n\r\t\u0000\u001f\u007f\u00e9\u20ac\ud83d\ude00""#)
        #expect(try JSONValue(parsing: #""\u00e9\uD83D\uDE00\/\"""#) == .string("é😀/\""))
        #expect(try JSONValue(parsing: try JSONValue.string(text).compactString()) == .string(text))
    }

    @Test("NaN and infinity are rejected unless null is requested")
    func nonFinite() throws {
        let value: JSONValue = ["metrics": [1.0, .number(.nan)], "ok": true]
        expectError(JSONError.self, { _ = try value.prettyPrinted() }) {
            $0 == .nonFiniteNumber(path: #"$["metrics"][1]"#) && $0.description.contains("NaN")
        }
        expectError(JSONError.self, { _ = try JSONValue.number(-.infinity).compactString() }) { $0 == .nonFiniteNumber(path: "$") }
        let lenient = try value.serialized(options: JSONWriteOptions(pretty: false, nonFinite: .null))
        #expect(lenient == #"{"metrics":[1.0,null],"ok":true}"#)
    }

    @Test("parse errors name the position", arguments: [
        ("{\"a\": 1,}", 1, 9, "trailing comma"),
        ("[1, 2", 1, 6, "end of input"),
        ("\n\n  @", 3, 3, "expected a JSON value"),
        ("[01]", 1, 2, "leading zeros"),
        ("\"\\ud800\"", 1, 2, "surrogate"),
        ("\"\\udc00x\"", 1, 2, "lone low surrogate"),
        ("\"a\u{1}\"", 1, 3, "control character"),
        ("{\"k\": 1, \"k\": 2}", 1, 10, "duplicate key"),
        ("[1] [2]", 1, 5, "after the JSON value"),
        ("", 1, 1, "end of input"),
        ("nul", 1, 1, "null"),
        ("{'a': 1}", 1, 2, "string key"),
        ("NaN", 1, 1, "expected a JSON value"),
        ("1.", 1, 3, "decimal point"),
        ("1e", 1, 3, "exponent"),
        ("-", 1, 2, "digit"),
        ("\"\\x\"", 1, 2, "invalid escape"),
        ("\"abc", 1, 5, "unterminated"),
        ("1e999", 1, 1, "out of range"),
    ])
    func parseErrors(input: String, line: Int, column: Int, fragment: String) {
        expectError(JSONError.self, { _ = try JSONValue(parsing: input) }) { error in
            guard case let .syntax(message, _, errorLine, errorColumn) = error else { return false }
            return errorLine == line && errorColumn == column && message.contains(fragment)
                && error.description.contains("line \(line), column \(column)")
        }
    }

    @Test("invalid UTF-8 and deep nesting are rejected without crashing")
    func hostileInput() {
        expectError(JSONError.self, { _ = try JSONValue(parsing: [0x22, 0xFF, 0xFE, 0x22]) })
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        expectError(JSONError.self, { _ = try JSONValue(parsing: deep) }) { error in
            if case let .syntax(message, _, _, _) = error { return message.contains("nesting") } else { return false }
        }
        let okDepth = String(repeating: "[", count: JSONValue.maximumParseDepth) + String(repeating: "]", count: JSONValue.maximumParseDepth)
        #expect((try? JSONValue(parsing: okDepth)) != nil)
    }

    @Test("object keeps insertion order, replaces in place and removes")
    func objectOrdering() {
        var object: JSONObject = ["z": 1, "a": 2]
        object["m"] = 3
        object["z"] = 4
        #expect(object.keys == ["z", "a", "m"])
        #expect(object["z"] == .int(4))
        object["a"] = nil
        #expect(object.keys == ["z", "m"])
        #expect(object.count == 2)
        #expect(object.sortedByKey().keys == ["m", "z"])
        #expect(JSONValue.object(object)["m"]?.intValue == 3)
        #expect(JSONValue.array([1, 2])[1] == .int(2))
        #expect(JSONValue.array([1, 2])[5] == nil)
        let reordered: JSONObject = ["m": 3, "z": 4]
        #expect(object != reordered)  // order-sensitive, like the output
    }

    @Test("write(to:) and init(contentsOf:) round trip")
    func fileRoundTrip() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("config.json")
        try sample.write(to: url)
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text == (try sample.prettyPrinted()) + "\n")
        #expect(try JSONValue(contentsOf: url) == sample)
    }
}
