// Version constants shared by every artifact the tools write.

/// Version information for the ToyMoE tools and libraries.
///
/// `string` is recorded in every provenance record so that results can be
/// traced back to the code that produced them.
public enum ToyMoEVersion {
    /// Semantic version of the ToyMoE package.
    public static let string = "0.1.0"

    /// The Swift compiler version this module was built with, as far as it can
    /// be determined at compile time.
    ///
    /// `#if compiler(...)` only allows comparisons, so the value is a lower
    /// bound such as `">=6.3"` rather than an exact version string.
    public static let swiftCompiler: String = {
        #if compiler(>=7.0)
        return ">=7.0"
        #elseif compiler(>=6.3)
        return ">=6.3"
        #elseif compiler(>=6.2)
        return ">=6.2"
        #elseif compiler(>=6.1)
        return ">=6.1"
        #elseif compiler(>=6.0)
        return ">=6.0"
        #else
        return "<6.0"
        #endif
    }()
}
